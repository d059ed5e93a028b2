"""Processes and temporary folders that never outlive the build: SIGKILL, Ctrl-C and SIGTERM alike.

- Every child (Chromium, the -j workers' forkserver, the workers it forks) gets a parent-death
  signal (Linux prctl PR_SET_PDEATHSIG): when the process that started it dies, even by SIGKILL,
  the kernel signals it. Chromium and the forkserver get SIGKILL (Chromium's helpers and the
  workers follow); workers get SIGTERM, which unwinds them (WorkerStopped) so their `with` blocks
  close Chromium and delete their temporary folders, with a hard stop (SIGALRM) a few seconds later.
- During a run the parent turns the first SIGINT/SIGTERM into one KeyboardInterrupt (later ones are
  ignored while it shuts down), and workers ignore SIGINT: the terminal sends Ctrl-C to the whole
  process group, and only the parent decides, so shutdown is one orderly path.
- Temporary folders are named `recipekit-<kind>-<pid>-*`: what a SIGKILLed build left behind is
  swept by the next one (only folders whose owner process is gone).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

PR_SET_PDEATHSIG = 1
WORKER_GRACE_S = 3
"""Seconds a worker has to clean up after SIGTERM before SIGALRM ends it."""

_state = {"parent": 0, "interrupted": False, "forking": False, "signalled": False}


def _prctl() -> object | None:
    """libc's prctl, looked up once in the parent (a forked child must not dlopen: it may deadlock)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux; elsewhere a no-op)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)  # type: ignore[operator]


def preexec_die_with_parent() -> None:
    """`subprocess.Popen(preexec_fn=...)`: the child is SIGKILLed when this process dies."""
    die_with_parent(signal.SIGKILL)


class WorkerStopped(SystemExit):
    """A worker told to stop: unwinds like Ctrl-C (`with` blocks clean up), but as a SystemExit, so an
    idle pool worker exits quietly instead of multiprocessing printing a KeyboardInterrupt traceback."""


def _worker_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one interrupt; cleanup must not be interrupted again
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(WORKER_GRACE_S)
    raise WorkerStopped(128 + signum)


def _after_fork_in_child() -> None:
    if not _state["forking"]:
        return
    _state["forking"] = False
    die_with_parent(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_sigterm)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _parent_signal(signum: int, frame: object) -> None:
    if os.getpid() != _state["parent"] or _state["interrupted"]:
        return
    _state.update(interrupted=True, signalled=True)
    _signal_workers(signal.SIGTERM)  # before unwinding: a pool's graceful close would wait for busy workers
    raise KeyboardInterrupt(f"signal {signum}")


def _signal_workers(sig: int) -> None:
    import multiprocessing

    for p in multiprocessing.active_children():
        with contextlib.suppress(OSError, TypeError):
            os.kill(p.pid, sig)


def signalled() -> bool:
    """True once a supervised run of this process got SIGINT or SIGTERM."""
    return bool(_state["signalled"])


def supervise_forks() -> None:
    """In a process that forks the build's workers (the forkserver): every child it forks from now on
    dies with it, ignores SIGINT and unwinds on SIGTERM, as a worker of `supervised_run`."""
    _state["forking"] = True


@contextlib.contextmanager
def supervised_run() -> Iterator[None]:
    """Around a run that forks workers: see the module docstring. Main thread only (else a plain run)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    _state.update(parent=os.getpid(), interrupted=False, forking=True)
    for s in previous:
        signal.signal(s, _parent_signal)
    try:
        yield
    finally:
        _state["forking"] = False
        _end_children()
        for s, handler in previous.items():
            signal.signal(s, handler)


def _end_children(grace: float = WORKER_GRACE_S + 1) -> None:
    """Every worker this process started: SIGTERM, then SIGKILL what is left after `grace` seconds."""
    import multiprocessing
    import time

    children = multiprocessing.active_children()
    for p in children:
        with contextlib.suppress(OSError):
            p.terminate()
    deadline = time.monotonic() + grace
    for p in children:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1)


# ---- temporary folders -------------------------------------------------------------------------


def make_tempdir(kind: str) -> Path:
    """A new temporary folder `recipekit-<kind>-<pid>-<start>-*` (core.owner's tag: sweep_stale removes
    it once this process is gone, even if its pid was given to another process since)."""
    from recipekit.core import owner

    return Path(tempfile.mkdtemp(prefix=f"recipekit-{kind}-{owner.tag()}-"))


def remove_at_exit(path: Path) -> None:
    """Delete `path` when this process exits normally, a `-j`/warm pool worker included: those end
    through multiprocessing (os._exit, no atexit), which runs its own exit finalizers instead; the
    main process runs them from atexit. A killed process's folder is swept by the next build."""
    from multiprocessing import util

    util.Finalize(None, shutil.rmtree, args=(str(path), True), exitpriority=0)


def claim_folder(folder: Path) -> Path | None:
    """A note `recipekit-claim-<pid>-<start>-*` beside `folder` (a direct child of the temporary
    folder multiprocessing made for this process, `pymp-*`) naming it: once
    this process is gone, sweep_stale removes the folder and the note."""
    from recipekit.core import owner

    root = Path(tempfile.gettempdir())
    if folder.parent != root:
        return None
    fd, name = tempfile.mkstemp(prefix=f"recipekit-claim-{owner.tag()}-", dir=root)
    with os.fdopen(fd, "w") as fh:
        fh.write(folder.name)
    return Path(name)


def _sweep_claimed(note: Path) -> None:
    """Remove the folder a stale claim note names (a plain name beside it, never a path) and the note."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        name = note.read_text()[:255]
        mine = note.lstat().st_uid == os.getuid()
        if mine and name.startswith("pymp-") and "/" not in name:
            target = note.parent / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
    note.unlink()


def _stale(name: str) -> bool:
    """Whether `recipekit-<kind>-<pid>[-<start>]-<rest>` belongs to a process that is gone (core.owner):
    exited, a zombie not yet reaped (the workers of a build killed as a group), or replaced under its pid."""
    from recipekit.core import owner

    parts = name.split("-")
    if len(parts) < 4 or not parts[2].isdigit():
        return False
    start = parts[3] if len(parts) >= 5 and parts[3].isdigit() else "0"  # folders named before the start time
    return owner.gone(int(parts[2]), int(start))


def sweep_stale(kinds: tuple[str, ...] = ("web", "chromium", "ultralytics", "mpl", "torch", "claim")) -> int:
    """Delete temporary folders (and Chromium logs) of recipekit processes that no longer run."""
    removed = 0
    root = Path(tempfile.gettempdir())
    for kind in kinds:
        for path in root.glob(f"recipekit-{kind}-*-*"):
            if not _stale(path.name):
                continue
            with contextlib.suppress(OSError):
                if kind == "claim":
                    _sweep_claimed(path)
                elif path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed += 1
    return removed
