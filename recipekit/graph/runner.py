"""Run steps: in this process for -j 1 (or nothing to build), on a pool of pre-loaded workers for -j N,
or on the workers the console command forked before composing (a warm start, executors/warm.py).

Every executor reports through `step_started` and `report_step`; what is shown (live view, plain lines,
JSON) is the event sink's business (recipekit.report.console), never the runner's."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipekit.core.events import EventSink, StepEvent, discard
from recipekit.graph.plan import Step


@dataclass
class Outcome:
    """What a run did: each task's result (status, seconds, error) in finishing order."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    exit_code: int = 0

    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results.values() if r["status"].startswith("failed")]


def step_started(events: EventSink, task: str) -> None:
    """A step began running (every executor calls this)."""
    events(StepEvent.started(task))


def report_step(events: EventSink, outcome: Outcome, result: dict[str, Any]) -> None:
    """A step finished: recorded in the outcome, then one event (every executor calls this)."""
    outcome.results[result["task"]] = result
    events(StepEvent.finished(result))


def settings_of(settings_by_recipe: dict[str, dict[str, Any]], task: str) -> dict[str, Any]:
    """The build settings of the recipe `task` belongs to (task names start with `<recipe>:`)."""
    return settings_by_recipe[task.split(":", 1)[0]]


def key_steps(steps: list[Step], settings_by_recipe: dict[str, dict[str, Any]], readonly: bool = False) -> list[Step]:
    """Every step with its key (graph.keys), recipe by recipe; steps keyed already are kept."""
    from recipekit.graph.keys import assign_keys

    by_recipe: dict[str, list[Step]] = {}
    for s in steps:
        by_recipe.setdefault(s.task.split(":", 1)[0], []).append(s)
    keyed = {}
    for name, mine in by_recipe.items():
        if all(s.key for s in mine):
            keyed.update({s.task: s for s in mine})
        else:
            keyed.update({s.task: s for s in assign_keys(mine, settings_by_recipe[name], readonly=readonly)})
    return [keyed[s.task] for s in steps]


def run_steps(
    steps: list[Step],
    settings_by_recipe: dict[str, dict[str, Any]],
    jobs: int = 1,
    events: EventSink = discard,
    warm: Any = None,
) -> Outcome:
    """Execute the steps in this process; with jobs > 1 and something to build, on a
    pool of pre-loaded worker processes (graph/executors/local.py); with `warm` (workers started
    before the recipe was composed, graph/executors/warm.py) and something to build, on those.

    `settings_by_recipe` maps a recipe name to its build settings (several recipes may share one
    run); `events` receives a StepEvent as each step starts and finishes. Steps are keyed first
    (graph.keys), stale temporary folders of killed builds are removed, and the build holds its keys
    (for `gc`)."""
    from contextlib import ExitStack

    from recipekit.cache.store import Store

    steps = key_steps(steps, settings_by_recipe)
    stores = {str(Path(settings["cache"]).resolve()) for settings in settings_by_recipe.values()}
    with ExitStack() as stack:
        for root in sorted(stores):
            store = Store(root)
            store.clean_tmp()
            mine = [
                s.key for s in steps if str(Path(settings_of(settings_by_recipe, s.task)["cache"]).resolve()) == root
            ]
            stack.enter_context(store.hold(mine))
        if jobs > 1 or warm is not None:
            from recipekit.graph.executors.local import must_run, run_local

            if must_run(steps, settings_by_recipe):
                from recipekit.core import lifetime

                os.environ.update(lifetime.DASK_PRELOAD)  # workers ignore Ctrl-C and die with the build
                with lifetime.supervised_run():  # Ctrl-C/SIGTERM: workers stopped at once, one orderly stop
                    return run_local(steps, settings_by_recipe, jobs, events, pool=warm.pool if warm else None)
        return _run_inline(steps, settings_by_recipe, events)  # -j 1, or nothing to build: no worker processes


def _run_inline(steps: list[Step], settings_by_recipe: dict[str, dict[str, Any]], events: EventSink) -> Outcome:
    """-j 1: the steps one after the other in this process, in plan order (upstreams first).

    A no-op build is mostly start-up time, so nothing more is loaded: a step after a failed one
    is `blocked`."""
    from recipekit.core import lifetime
    from recipekit.graph.execute import execute

    lifetime.sweep_stale()
    outcome = Outcome()
    with lifetime.supervised_run():
        for step in steps:
            bad = [d for d in step.deps.values() if outcome.results[d]["status"].startswith(("failed", "blocked"))]
            if bad:
                report_step(
                    events,
                    outcome,
                    {"status": "blocked", "task": step.task, "reason": f"after failed {', '.join(bad)}"},
                )
                continue
            step_started(events, step.task)
            up = {role: {**outcome.results[dep], "task": dep} for role, dep in step.deps.items()}
            result = execute(step.to_dict(), settings_of(settings_by_recipe, step.task), up)
            report_step(events, outcome, {**result, "task": step.task})
    outcome.exit_code = 1 if any(r["status"].startswith(("failed", "blocked")) for r in outcome.results.values()) else 0
    return outcome
