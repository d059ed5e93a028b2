"""Run steps on doit: a custom loader, a reporter that turns doit's callbacks into step events, parallel with -j.

Every executor reports through `step_started` and `report_step`; what is shown (live view, plain lines,
JSON) is the event sink's business (recipekit.report.console), never the runner's."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipekit.core.events import EventSink, StepEvent, discard
from recipekit.graph.doit_tasks import to_task
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


class _DoitReporter:
    """doit reporter: a started event per executed step, a finished event per result.
    doit makes the instance; `_reporter_class` binds the outcome and the sink."""

    outcome: Outcome
    events: EventSink

    def __init__(self, outstream: Any, options: Any) -> None: ...
    def initialize(self, tasks: Any, selected: Any) -> None: ...
    def get_status(self, task: Any) -> None: ...
    def skip_uptodate(self, task: Any) -> None: ...
    def skip_ignore(self, task: Any) -> None: ...
    def teardown_task(self, task: Any) -> None: ...
    def cleanup_error(self, exception: Any) -> None: ...
    def complete_run(self) -> None: ...

    def execute_task(self, task: Any) -> None:
        step_started(self.events, task.name)

    def add_success(self, task: Any) -> None:
        report_step(self.events, self.outcome, dict(task.values) or {"status": "ran", "task": task.name})

    def add_failure(self, task: Any, exception: Any) -> None:
        try:
            result = json.loads(exception.message)
        except (ValueError, AttributeError):  # doit: a step it depends on failed
            bad = ("failed", "blocked")
            needs = [d for d in task.task_dep if self.outcome.results.get(d, {}).get("status", "").startswith(bad)]
            why = ", ".join(needs) or exception.get_msg().strip()
            result = {"status": "blocked", "task": task.name, "reason": f"after failed {why}"}
        report_step(self.events, self.outcome, result)

    def runtime_error(self, msg: str) -> None:
        self.events(StepEvent.run_error(msg))


def _reporter_class(outcome: Outcome, events: EventSink) -> type:
    return type("Reporter", (_DoitReporter,), {"outcome": outcome, "events": staticmethod(events)})


def key_steps(steps: list[Step], envs: dict[str, dict[str, Any]], readonly: bool = False) -> list[Step]:
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
            keyed.update({s.task: s for s in assign_keys(mine, envs[name], readonly=readonly)})
    return [keyed[s.task] for s in steps]


def run_steps(
    steps: list[Step], envs: dict[str, dict[str, Any]], jobs: int = 1, events: EventSink = discard
) -> Outcome:
    """Execute the steps' doit tasks in this process; with jobs > 1 and something to build, on a
    pool of pre-loaded worker processes (graph/executors/local.py).

    `envs` maps a recipe name to its build settings (several recipes may share one run); `events`
    receives a StepEvent as each step starts and finishes. Steps are keyed first (graph.keys),
    stale temporary folders of killed builds are removed, and the build holds its keys (for `gc`)."""
    from contextlib import ExitStack

    from recipekit.cache.store import Store

    steps = key_steps(steps, envs)
    stores = {str(Path(env["cache"]).resolve()) for env in envs.values()}
    with ExitStack() as stack:
        for root in sorted(stores):
            store = Store(root)
            store.clean_tmp()
            mine = [s.key for s in steps if str(Path(envs[s.task.split(":", 1)[0]]["cache"]).resolve()) == root]
            stack.enter_context(store.hold(mine))
        if jobs > 1:
            from recipekit.graph.executors.local import must_run, run_local

            if must_run(steps, envs):
                from recipekit.core import lifetime

                os.environ.update(lifetime.DASK_PRELOAD)  # workers ignore Ctrl-C and die with the build
                with lifetime.supervised_run():  # Ctrl-C/SIGTERM: workers stopped at once, one orderly stop
                    return run_local(steps, envs, jobs, events)
        return _run_inline(steps, envs, events)  # -j 1, or nothing to build: no worker processes


def _run_inline(steps: list[Step], envs: dict[str, dict[str, Any]], events: EventSink) -> Outcome:
    """-j 1: the steps one after the other in this process, in plan order (upstreams first).

    The same steps, results and events as doit's serial run, without loading doit (a no-op build
    is mostly start-up time): a step after a failed one is `blocked`."""
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
            result = execute(step.to_dict(), envs[step.task.split(":", 1)[0]], up)
            report_step(events, outcome, {**result, "task": step.task})
    outcome.exit_code = 1 if any(r["status"].startswith(("failed", "blocked")) for r in outcome.results.values()) else 0
    return outcome


def _run_doit(steps: list[Step], envs: dict[str, dict[str, Any]], jobs: int, events: EventSink) -> Outcome:
    from doit.cmd_base import TaskLoader2
    from doit.doit_cmd import DoitMain
    from doit.task import dict_to_task

    from recipekit.core import lifetime

    lifetime.sweep_stale()  # what a SIGKILLed build left in the temp folder
    outcome = Outcome()
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    tasks = [to_task(s, {**envs[s.task.split(":", 1)[0]], "threads": threads}) for s in steps]
    with tempfile.TemporaryDirectory(prefix=f"recipekit-doit-{os.getpid()}-") as tmp:
        config = {
            "dep_file": os.path.join(tmp, "db.json"),
            "backend": "json",
            "verbosity": 2,
            "continue": True,
            "reporter": _reporter_class(outcome, events),
            "num_process": jobs if jobs > 1 else 0,
            "par_type": "process",
        }

        class Loader(TaskLoader2):
            def setup(self, opt_values: Any) -> None: ...
            def load_doit_config(self) -> dict[str, Any]:
                return config

            def load_tasks(self, cmd: Any, pos_args: Any) -> list[Any]:
                return [dict_to_task(t) for t in tasks]

        with lifetime.supervised_run():  # Ctrl-C/SIGTERM: one orderly stop; workers die with the build
            outcome.exit_code = DoitMain(Loader()).run(["run"])
    return outcome
