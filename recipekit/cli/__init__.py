"""recipekit's command line. `main(argv) -> int`; only this package turns errors into exit codes.

Subcommand modules are imported only when chosen, so `recipekit --help` stays fast and light.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from recipekit.core.errors import RecipeKitError

COMMANDS = {
    "build": ("recipekit.cli.build", "build recipes: export, fix, compile, gate, publish (cached)"),
    "plan": ("recipekit.cli.build", "show the steps of a build, their keys and whether they are cached"),
    "matrix": ("recipekit.cli.matrix", "build many recipes x targets in one run; terminal table and reports"),
    "release": ("recipekit.cli.release", "build, gate and write a reproducible release folder dist/<version>/"),
    "verify": (
        "recipekit.cli.release",
        "check a release folder's hashes and tool versions; --rebuild compares byte for byte",
    ),
    "cache": (
        "recipekit.cli.cache",
        "inspect the step cache: ls, du, verify [--repair], gc [--older-than 30d] [--max-size 20G]",
    ),
    "show": ("recipekit.cli.info", "print the resolved recipe (defaults and overrides applied) as YAML"),
    "schema": ("recipekit.cli.info", "print the recipe JSON Schema (for editors)"),
    "list": ("recipekit.cli.info", "list the registered sources, fixes, targets and gates"),
    "doit": (
        "recipekit.cli.doit",
        "doit's commands on a build's tasks: recipekit doit RECIPE... -- list|info|clean|ignore|forget|dumpdb",
    ),
    "localize": (
        "recipekit.cli.localize",
        "find the first node whose output on a runtime (a browser bundle, ORT) disagrees with ORT CPU; cut a repro",
    ),
    "device-check": (
        "recipekit.cli.device",
        "run a trt-jetson bundle's check program here (--backend ort) or on the device",
    ),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recipekit",
        description="Declarative, cached, gated builds of vision models for ONNX Runtime, WebGPU and TensorRT.",
    )
    from recipekit import __version__

    parser.add_argument("--version", action="version", version=f"recipekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _keep_tools_out_of_tmp() -> None:
    """Tools that leave files in $TMPDIR on their own, set (unless the user set them) before any of
    them loads, for this process and every child: ONNX Runtime's telemetry writes a session file
    (`.ses`) on import and keeps it, so it is turned off; importing torch._dynamo (any torch.export)
    creates `torchinductor_<user>`, so torch's cache goes to a folder of this command's own, removed
    when it ends (or, if it is killed, by the next build's sweep: core.lifetime)."""
    import atexit
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from recipekit.core import owner

    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        path = Path(tempfile.gettempdir()) / f"recipekit-torch-{owner.tag()}-cache"
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
        atexit.register(shutil.rmtree, path, True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _keep_tools_out_of_tmp()
    if not argv or argv[0] not in COMMANDS:  # --help, --version, or an unknown command
        _parser().parse_args(argv or ["--help"])
        return 2
    try:
        module = importlib.import_module(COMMANDS[argv[0]][0])
        code = int(module.invoke(argv[0], argv[1:]) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except RecipeKitError as exc:
        return _error(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _error("interrupted", 130, prefix="recipekit: ")
    except BrokenPipeError:  # `recipekit schema | head`: the reader has gone, nothing to say to it
        _silence_stdout()
        return 141
    except OSError as exc:  # an unreadable or read-only folder or file: name it
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}", 2)


def run() -> None:
    """The `recipekit` command (and `python -m recipekit`): `main()`, then the exit.

    The interpreter's own teardown (freeing every module's objects) takes about 0.4 s once torch is
    loaded, and 50 ms after a build that left the steps to its workers: longer than the rest of a
    no-op build's exit. This exits the way Python would up to that point (non-daemon threads joined,
    atexit handlers run, output flushed) and then skips the teardown, as multiprocessing's children
    do. Everything a step writes is closed by the step itself; nothing is left in a buffer for the
    teardown to flush.

    Ctrl-C and SIGTERM end it with one line and exit 130, whenever they come (a build's own
    handling takes over while it runs; later signals are ignored while it stops)."""
    _interrupt_on_signals()
    try:
        from recipekit.graph.executors.workers import enable_warm_start

        enable_warm_start()  # a fresh process of its own: a likely build may start its workers early
        code = main()
    except BaseException:  # also what a library raised while it was being interrupted
        if not _interrupted():
            raise
        code = _error("interrupted", 130, prefix="recipekit: ")
    _exit_now(code)


_SIGNALLED: list[int] = []


def _interrupt_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the command, once."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        if not _SIGNALLED:
            _SIGNALLED.append(signum)
            raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)


def _interrupted() -> bool:
    """Whether the command got SIGINT or SIGTERM (here or while a build ran)."""
    if _SIGNALLED:
        return True
    from recipekit.core import lifetime

    return lifetime.signalled()


def _exit_now(code: int) -> None:
    import atexit
    import os
    import threading

    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs is None:  # not CPython: the ordinary exit
        sys.exit(code)
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _error(message: str, code: int, prefix: str = "recipekit: error: ") -> int:
    try:
        print(prefix + message, file=sys.stderr)
    except OSError:
        pass
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
