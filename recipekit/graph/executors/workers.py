"""The worker processes of a -j run: forked by a forkserver that imported the heavy libraries once.

doit's process runner starts its workers with multiprocessing; here they come from a forkserver
(multiprocessing's own) whose preload, `executors.boot`, runs each planned plugin's
`before_import` and imports what the plugins declare (Plugin.imports: torch, ultralytics,
onnxruntime, ...). Each worker is a fork of it: nothing is imported twice.

The forkserver starts only when something must be built: a no-op build starts no process and
imports no torch. The `recipekit` command starts it early (a warm start) when a build is likely
(the recipe's composition is not remembered in the cache, or --force): it imports while the
command composes, plans and keys. If composing fails, or nothing turns out to need building, it is
stopped silently (SIGTERM: it unwinds and removes its temporary folders).

Lifetime: the forkserver dies with the build (parent-death signal), and every worker with the
forkserver; workers ignore Ctrl-C (only the build decides) and unwind on SIGTERM (core.lifetime).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BOOT = "recipekit.graph.executors.boot"
PLUGINS_ENV = "RECIPEKIT_PRELOAD"
BUILD_ENV = "RECIPEKIT_BUILD_PID"
SIGNALS = {signal.SIGINT, signal.SIGTERM}
_console = {"enabled": False}


def enable_warm_start() -> None:
    """Called by the console command (cli.run), never by `main()` used as a library."""
    _console["enabled"] = True


def step_plugins(steps: list[Any]) -> list[tuple[str, str]]:
    """The (role, name) of every plugin the steps run, in plan order, each once."""
    out: list[tuple[str, str]] = []
    for step in steps:
        if step.kind in ("export", "golden"):
            found = [("source", step.plugin)]
        elif step.kind == "fix":
            found = [("fix", f["name"]) for f in step.config.get("fixes", []) if isinstance(f, dict) and "name" in f]
        elif step.kind == "gate":
            found = [("gate", step.plugin)]
        elif step.target:
            found = [("target", step.target)]
        else:
            found = []
        out += [p for p in found if p not in out]
    return out


def _plugin(role: str, name: str) -> Any:
    from recipekit.fixes import FIXES
    from recipekit.gates import GATES
    from recipekit.sources import SOURCES
    from recipekit.targets import TARGETS

    return {"source": SOURCES, "fix": FIXES, "gate": GATES, "target": TARGETS}[role].get(name)


def plugin_imports(plugins: list[tuple[str, str]]) -> tuple[str, ...]:
    """The heavy modules those plugins import (Plugin.imports), torch first, in a stable order."""
    names = {m for role, name in plugins for m in _plugin(role, name).imports}
    return tuple(sorted(names, key=lambda m: (m != "torch", m)))


def preload_plugins(plugins: list[tuple[str, str]]) -> list[str]:
    """Each plugin's `before_import`, then every module they declare. What fails is left to the step
    that needs it, which calls `before_import` itself and reports why."""
    import importlib

    for role, name in plugins:
        try:
            _plugin(role, name).before_import()
        except Exception:  # noqa: BLE001 - a failing preload must not kill the forkserver (every step would fail)
            pass
    done = []
    for module in plugin_imports(plugins):
        try:
            importlib.import_module(module)
            done.append(module)
        except Exception:  # noqa: BLE001 - the step that needs it reports why
            pass
    return done


def likely_sources(recipes: list[str], overrides: list[str], cache: Path, force: bool) -> list[tuple[str, str]]:
    """("source", kind) for each recipe a build would likely run steps for (--force, or its composition
    not remembered in the cache) whose text names a known source kind; [] means no warm start (a
    likely no-op, or recipes that composing will reject). Reads only the recipe texts and the memo."""
    from recipekit.recipe.fragments import remembered, source_kind_hint
    from recipekit.sources import SOURCES

    kinds = {source_kind_hint(path, overrides) for path in recipes if force or not remembered(path, overrides, cache)}
    return [("source", k) for k in sorted(k for k in kinds if k in SOURCES)]


class Forkserver:
    """The forkserver of one build (multiprocessing keeps one per process): started at most once."""

    def __init__(self) -> None:
        self.started = False

    def start(self, plugins: list[tuple[str, str]]) -> None:
        """Start it (if not yet), preloading what `plugins` import. Returns at once: it imports while
        this process goes on; the first worker waits for it."""
        if self.started:
            return
        import multiprocessing
        from multiprocessing import forkserver

        os.environ.update({PLUGINS_ENV: json.dumps(plugins), BUILD_ENV: str(os.getpid())})
        multiprocessing.set_forkserver_preload([BOOT])
        _quiet_resource_tracker()
        old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)  # it starts blocked; boot ignores them
        try:
            forkserver.ensure_running()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        _claim_socket_folder(forkserver._forkserver._forkserver_address)
        self.started = True

    def stop(self, grace: float = 3.0) -> None:
        """Stop it quietly, also in the middle of its imports (its workers have ended by then): SIGTERM,
        and SIGKILL if it is still there after `grace` seconds."""
        if not self.started:
            return
        from multiprocessing import forkserver

        server = forkserver._forkserver  # one per process; the stdlib offers no public stop
        pid = server._forkserver_pid
        if pid is not None:
            os.kill(pid, signal.SIGTERM)  # our child, not reaped yet: the pid is still its own
            if not _wait_exited(pid, grace):
                os.kill(pid, signal.SIGKILL)
            server._stop()  # closes its "alive" pipe and reaps it
        self.started = False


def _claim_socket_folder(address: str | None) -> None:
    """multiprocessing's `pymp-*` folder of the forkserver's socket (it removes it when the build exits):
    a note owned by this build names it, so the next build sweeps it when this one was SIGKILLed."""
    if not address:
        return
    from multiprocessing import util

    from recipekit.core import lifetime

    note = lifetime.claim_folder(Path(address).parent)
    if note is not None:
        util.Finalize(None, note.unlink, kwargs={"missing_ok": True}, exitpriority=-200)


def _wait_exited(pid: int, timeout: float) -> bool:
    """Whether our child `pid` ends within `timeout` seconds (it is not reaped). Woken by the exit
    itself (a pidfd) where the kernel offers one, else by looking every 20 ms."""
    import select
    import time

    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        deadline = time.monotonic() + timeout
        while not _exited(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        return _exited(pid)
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return _exited(pid)


def _exited(pid: int) -> bool:
    """Whether our child `pid` has ended (it is not reaped: its pid cannot be reused meanwhile)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _quiet_resource_tracker() -> None:
    """multiprocessing's resource tracker (it unlinks the queues' semaphores of a build that was
    SIGKILLed), started with its stderr on /dev/null: after a SIGKILL it would warn about them."""
    from multiprocessing import resource_tracker

    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        resource_tracker.ensure_running()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextmanager
def warm_start(recipes: list[str], overrides: list[str], cache: Path, force: bool) -> Iterator[Forkserver]:
    """Around composing, planning and running: a Forkserver, started now when a build is likely (the
    console command only, RECIPEKIT_WARM_START=0 turns it off), stopped when the block ends."""
    server = Forkserver()
    if _console["enabled"] and os.environ.get("RECIPEKIT_WARM_START", "1") != "0" and "torch" not in sys.modules:
        sources = likely_sources(recipes, overrides, cache, force)
        if sources:
            server.start(sources)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def start_method() -> Iterator[None]:
    """multiprocessing's default start method is the forkserver while a run uses workers (doit's
    runner starts `multiprocessing.Process`es); the previous one afterwards."""
    import multiprocessing

    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("forkserver", force=True)
    try:
        yield
    finally:
        multiprocessing.set_start_method(previous, force=True)
