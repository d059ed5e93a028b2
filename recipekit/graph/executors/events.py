"""A doit reporter that turns doit's callbacks into the build's step events (core.events) and results.

The console (live view, plain lines, --json), JUnit and the step summary are fed by the events and
the results, as from any executor; tasks that are not steps (a recipe's group task) are not reported.
doit calls: `execute_task` when a step starts (from a worker, through doit's result queue),
`add_success` / `add_failure` when it ends, `skip_uptodate` for a step the cache already holds (its
result as the up-to-date check found it), `skip_ignore` for one `doit ignore` set aside.
"""

from __future__ import annotations

from typing import Any

from recipekit.core.events import EventSink, StepEvent


class StepReporter:
    """Reports to `events`; every step's result lands in `results` (task -> result dict) as it ends."""

    desc = "recipekit step events"

    def __init__(self, events: EventSink, results: dict[str, dict[str, Any]]) -> None:
        self.events, self.results = events, results

    @staticmethod
    def _step(task: Any) -> bool:
        return "recipekit" in (task.meta or {})

    def _finish(self, task: Any, result: dict[str, Any]) -> None:
        result = {**result, "task": task.name}
        self.results[task.name] = result
        self.events(StepEvent.finished(result))

    def initialize(self, tasks: Any, selected_tasks: Any) -> None:
        pass

    def get_status(self, task: Any) -> None:
        pass

    def execute_task(self, task: Any) -> None:
        if self._step(task):
            self.events(StepEvent.started(task.name))

    def add_success(self, task: Any) -> None:
        if self._step(task):
            self._finish(task, dict(task.values))

    def add_failure(self, task: Any, fail: Any) -> None:
        if not self._step(task):
            return
        from doit.exceptions import UnmetDependency

        from recipekit.graph.doit_tasks import StepFailure

        if isinstance(fail, StepFailure):
            result = fail.result
        elif isinstance(fail, UnmetDependency):  # an upstream failed: this step does not run
            after = ", ".join(fail.message.split())
            result = {"status": "blocked", "reason": f"after failed {after}"}
        else:  # doit could not run the step (an error in the task, not in the step's work)
            result = {"status": "failed", "error": fail.message, "log": "".join(fail.traceback)}
        self._finish(task, result)

    def skip_uptodate(self, task: Any) -> None:
        from recipekit.graph.doit_tasks import KNOWN

        if self._step(task):
            self.events(StepEvent.started(task.name))
            self._finish(task, KNOWN.pop(task.name, None) or {"status": "cached", "key": task.meta["recipekit"]["key"]})

    def skip_ignore(self, task: Any) -> None:
        if self._step(task):
            why = f"ignored (`doit ignore`; `recipekit doit ... -- forget {task.name}` builds it again)"
            self._finish(task, {"status": "skipped", "reason": why})

    def cleanup_error(self, exception: Any) -> None:
        self.events(StepEvent.run_error(exception.get_msg()))

    def runtime_error(self, msg: str) -> None:
        self.events(StepEvent.run_error(msg))

    def teardown_task(self, task: Any) -> None:
        pass

    def complete_run(self) -> None:
        pass
