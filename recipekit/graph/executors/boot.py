"""The forkserver's preload (executors.workers): imported by the forkserver a build started, it sets
the server up (signals, lifetime) and imports what its workers share: the planned plugins' heavy
libraries, doit's runner and recipekit's step tasks. Imported anywhere else, it does nothing."""

from __future__ import annotations

import json
import os
import signal

from recipekit.graph.executors.workers import BUILD_ENV, PLUGINS_ENV, SIGNALS, preload_plugins


def boot() -> None:
    if os.environ.get(BUILD_ENV) != str(os.getppid()):
        return
    from recipekit.core import lifetime

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the build decides
    signal.signal(signal.SIGTERM, _stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    lifetime.die_with_parent(signal.SIGKILL)
    if os.environ.get(BUILD_ENV) != str(os.getppid()):  # the build died before the line above
        os._exit(0)
    lifetime.supervise_forks()  # every worker forked from here: dies with it, ignores Ctrl-C, unwinds on SIGTERM
    preload_plugins([tuple(p) for p in json.loads(os.environ.get(PLUGINS_ENV) or "[]")])
    _preload_steps()
    _freeze()


def _freeze() -> None:
    """What the preload made is shared with every worker, copy-on-write. The garbage collector's full
    passes would write to each of those objects in each worker (and copy their pages, about 0.1 s
    of a first step): they leave it alone once it is frozen (it lives as long as the server anyway)."""
    import gc

    gc.freeze()


def _stop(signum: int, frame: object) -> None:
    """SIGTERM (the build stops its forkserver): remove the temporary folders the preload made
    (core.lifetime.remove_at_exit) and exit at once; no library code in the middle of an import can
    catch it, as it could catch SystemExit."""
    from multiprocessing import util

    util._run_finalizers(0)
    os._exit(128 + signum)


def _preload_steps() -> None:
    """What a worker unpickles (doit's runner, recipekit's step tasks) and what every step runs
    (graph.execute, the stage modules): imported once here, not in each worker's first step."""
    import importlib

    import doit.runner  # noqa: F401

    import recipekit.graph.doit_tasks  # noqa: F401
    import recipekit.graph.execute  # noqa: F401
    import recipekit.graph.executors.local  # noqa: F401
    import recipekit.graph.settled  # noqa: F401
    from recipekit.graph.stages import STAGES

    for module in STAGES.values():
        importlib.import_module(module)


boot()
