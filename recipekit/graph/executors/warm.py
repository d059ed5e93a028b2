"""A warm start: the worker processes forked before the recipe is composed, when a build is likely.

A cold build spends its first second importing torch and the source's libraries, and before that
about 0.3 s composing the recipe (Hydra), planning and keying, one after the other. When the
recipe's composition is not remembered in the cache (a new or edited recipe, new overrides, a new
cache) or `--force` is given, the `recipekit` command forks its N workers first: they import what
the recipe's source declares (Plugin.imports; the kind read from the recipe's text) while this process
composes, plans and keys, and then run the steps, `-j 1` included (one worker). A build whose
composition is remembered (a no-op build, most likely) forks nothing and runs inline, and this
process never imports torch either way: if the plan turns out to have nothing to build, the
workers are stopped unused.

Only the console command starts warm (cli.run sets it), in a process that has loaded no heavy
library and runs no thread: forking is safe there. `main()` called from Python, and
RECIPEKIT_WARM_START=0, keep the inline run. The workers are supervised like any -j worker
(core.lifetime: they die with the build, Ctrl-C is one orderly stop).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # kept light: `recipekit --help` imports this module
    from collections.abc import Iterator
    from pathlib import Path

_enabled = {"console": False}


def enable() -> None:
    """Called by the console command (cli.run), never by `main()` used as a library."""
    _enabled["console"] = True


class Warm:
    """Started workers: `run_local` takes the pool (as many workers as the run's -j)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool


def _can_fork() -> bool:
    import threading

    return (
        _enabled["console"]
        and os.environ.get("RECIPEKIT_WARM_START", "1") != "0"
        and hasattr(os, "fork")
        and "torch" not in sys.modules
        and threading.active_count() == 1
    )


def likely_sources(recipes: list[str], overrides: list[str], cache: Path, force: bool) -> list[tuple[str, str]]:
    """("source", kind) for each recipe a build would likely run steps for (--force, or its composition
    not remembered in the cache) whose text names a known source kind; [] means no warm start (a
    likely no-op, or recipes that composing will reject). Reads only the recipe texts and the memo:
    no pydantic, no Hydra."""
    from recipekit.recipe.fragments import remembered, source_kind_hint
    from recipekit.sources import SOURCES

    kinds = {source_kind_hint(path, overrides) for path in recipes if force or not remembered(path, overrides, cache)}
    return [("source", k) for k in sorted(k for k in kinds if k in SOURCES)]


@contextmanager
def warm_start(recipes: list[str], overrides: list[str], cache: Path, jobs: int, force: bool) -> Iterator[Warm | None]:
    """Around composing, planning and running: the Warm workers, or None (run as before)."""
    sources = likely_sources(recipes, overrides, cache, force) if _can_fork() else []
    if not sources:
        yield None
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from recipekit.core import lifetime
    from recipekit.graph.executors.local import _warm

    with lifetime.supervised_run():  # forked under supervision: they die with the build
        pool = ProcessPoolExecutor(
            jobs,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_warm,  # each source's before_import, then its declared imports
            initargs=(sources,),
        )
        pool.submit(os.getpid)  # the fork start method launches every worker at the first submit: now
        try:
            yield Warm(pool)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # unused or done; supervised_run ends the rest
