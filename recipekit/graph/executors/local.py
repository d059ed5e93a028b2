"""`-j N` on this machine: a pool of N worker processes that import the heavy libraries once, as
they start (while this process keys and dispatches), then run step after step without re-importing.

Started only when some step must be built: a no-op build never forks and never imports torch. The
workers are forked from this process (which has not imported torch) under core.lifetime's
supervision: they die with the build, Ctrl-C is one orderly stop. They share this machine's cache,
so no file travels; each step gets its share of the cores. At most N steps are in flight, so a
step's `started` event means a worker has it.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from recipekit.core.events import EventSink, discard
from recipekit.graph.plan import Step
from recipekit.graph.runner import Outcome, report_step, settings_of, step_started


def must_run(steps: list[Step], settings_by_recipe: dict[str, dict[str, Any]]) -> bool:
    """True when some (keyed) step's entry is neither in the local cache nor in the remote one."""
    return bool(pending(steps, settings_by_recipe))


def pending(steps: list[Step], settings_by_recipe: dict[str, dict[str, Any]]) -> list[Step]:
    """The (keyed) steps whose entry is neither in the local cache nor in the remote one (all, with --force)."""
    from recipekit.cache.store import Store
    from recipekit.graph.status import _in_remote

    out = []
    for step in steps:
        settings = settings_of(settings_by_recipe, step.task)
        if step.kind == "publish" and not settings.get("force"):
            continue
        if settings.get("force") or (
            Store(settings["cache"], readonly=True).get(step.key) is None and not _in_remote(settings, step.key)
        ):
            out.append(step)
    return out


def _warm(plugins: list[tuple[str, str]]) -> None:
    """Pool initializer: the heavy imports the planned steps' plugins need, once per worker process."""
    from recipekit.graph.executors.worker import preload_plugins

    preload_plugins(plugins)


def chain_lengths(steps: list[Step]) -> dict[str, int]:
    """Per step, the number of steps in the longest chain from it to a step nothing depends on.

    A free worker takes the ready step that leads the longest chain (the critical path first): a
    cell's fix and gates start before another cell's last gate, so the run ends with every worker
    busy rather than one working through a long chain alone."""
    below: dict[str, list[str]] = {s.task: [] for s in steps}
    for s in steps:
        for dep in s.deps.values():
            below.setdefault(dep, []).append(s.task)
    memo: dict[str, int] = {}

    def length(task: str) -> int:
        if task not in memo:
            memo[task] = 1 + max((length(t) for t in below.get(task, [])), default=0)
        return memo[task]

    return {s.task: length(s.task) for s in steps}


class DependencyLoop:
    """The dependency loop: a step is submitted once every step it depends on has a result."""

    def __init__(
        self, pool: Any, steps: list[Step], settings_by_recipe: dict[str, dict[str, Any]], jobs: int, events: EventSink
    ) -> None:
        self.pool, self.settings_by_recipe, self.jobs, self.events = pool, settings_by_recipe, jobs, events
        self.waiting = list(steps)
        self.running: dict[Future, Step] = {}
        self.outcome = Outcome()
        self.chain = chain_lengths(steps)

    def ready(self) -> list[Step]:
        """The steps whose upstreams all have a result, those leading the longest chains first."""
        done = self.outcome.results
        ready = [s for s in self.waiting if all(d in done for d in s.deps.values())]
        return sorted(ready, key=lambda s: -self.chain[s.task])  # stable: plan order among equals

    def submit(self) -> None:
        from recipekit.graph.executors.worker import blocked, run_task

        for step in self.ready():
            if len(self.running) >= self.jobs:
                return
            self.waiting.remove(step)
            up = {role: self.outcome.results[dep] for role, dep in step.deps.items()}
            result = blocked(step.to_dict(), up)
            if result is not None:
                report_step(self.events, self.outcome, result)
                continue
            step_started(self.events, step.task)
            settings = settings_of(self.settings_by_recipe, step.task)
            self.running[self.pool.submit(run_task, step.to_dict(), settings, up)] = step

    def collect(self) -> None:
        done, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
        for fut in done:
            step = self.running.pop(fut)
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 - a worker that died (BrokenProcessPool) fails its step
                result = {"status": "failed", "task": step.task, "error": f"{type(exc).__name__}: {exc}"}
            report_step(self.events, self.outcome, result)

    def run(self) -> Outcome:
        while self.waiting or self.running:
            self.submit()
            if not self.running:  # nothing in flight and nothing ready: a dependency never ran
                for step in self.waiting:
                    report_step(
                        self.events,
                        self.outcome,
                        {"status": "blocked", "task": step.task, "reason": "after a step that did not run"},
                    )
                break
            self.collect()
        self.outcome.exit_code = 1 if self.outcome.failed() else 0
        return self.outcome


def run_local(
    steps: list[Step],
    settings_by_recipe: dict[str, dict[str, Any]],
    jobs: int,
    events: EventSink = discard,
    pool: Any = None,
) -> Outcome:
    """The (keyed) steps on `jobs` pre-loaded worker processes; the Outcome of a local run.

    `pool`: `jobs` workers started already (a warm start, graph/executors/warm.py), else new ones."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from recipekit.core import lifetime
    from recipekit.graph.executors.worker import step_plugins

    threads = max(1, (os.cpu_count() or 1) // jobs)
    settings_by_recipe = {name: {**settings, "threads": threads} for name, settings in settings_by_recipe.items()}
    lifetime.sweep_stale()
    with lifetime.supervised_run():
        pool = pool or ProcessPoolExecutor(
            jobs,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_warm,
            initargs=(step_plugins(pending(steps, settings_by_recipe)),),
        )
        try:
            outcome = DependencyLoop(pool, steps, settings_by_recipe, jobs, events).run()
        except BaseException:  # Ctrl-C, SIGTERM: drop what is queued; lifetime ends the workers
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)  # every step done: the workers exit on their own
        return outcome
