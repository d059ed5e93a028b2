"""Run steps on doit: a custom loader, a reporter printing one line per step, parallel with -j."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from recipekit.graph.doit_tasks import to_task
from recipekit.graph.plan import Step


@dataclass
class Outcome:
    """What a run did: each task's result (status, seconds, error) in finishing order."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    exit_code: int = 0

    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results.values() if r["status"].startswith("failed")]


class _Console:
    """Writes to a duplicate of the terminal's stdout, so step output capture never swallows it."""

    def __init__(self, quiet: bool) -> None:
        sys.stdout.flush()
        self.stream = os.fdopen(os.dup(1), "w", buffering=1)
        self.tty = self.stream.isatty()
        self.quiet = quiet
        self.lock = threading.Lock()

    def line(self, text: str, always: bool = False) -> None:
        if self.quiet and not always:
            return
        with self.lock:
            self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")

    def status(self, text: str) -> None:
        if self.tty and not self.quiet:
            with self.lock:
                self.stream.write("\r\033[K" + text)
                self.stream.flush()


def _reporter_class(outcome: Outcome, console: _Console) -> type:
    class Reporter:
        """doit reporter: one line per step (ran / cached / failed, seconds), a ticker for long steps."""

        def __init__(self, outstream: Any, options: Any) -> None:
            self.started: dict[str, float] = {}
            self.done = threading.Event()
            threading.Thread(target=self._tick, daemon=True).start()

        def _tick(self) -> None:
            while not self.done.wait(0.5):
                long = [(n, time.monotonic() - t) for n, t in list(self.started.items()) if time.monotonic() - t > 1]
                if long:
                    console.status("  running " + ", ".join(f"{n} {s:.0f}s" for n, s in long))

        def initialize(self, tasks: Any, selected: Any) -> None: ...
        def get_status(self, task: Any) -> None: ...
        def skip_uptodate(self, task: Any) -> None: ...
        def skip_ignore(self, task: Any) -> None: ...
        def teardown_task(self, task: Any) -> None: ...
        def cleanup_error(self, exception: Any) -> None: ...

        def execute_task(self, task: Any) -> None:
            self.started[task.name] = time.monotonic()

        def add_success(self, task: Any) -> None:
            self.started.pop(task.name, None)
            self._report(dict(task.values) or {"status": "ran", "task": task.name})

        def add_failure(self, task: Any, exception: Any) -> None:
            self.started.pop(task.name, None)
            try:
                result = json.loads(exception.message)
            except (ValueError, AttributeError):  # doit: a step it depends on failed
                needs = [
                    d
                    for d in task.task_dep
                    if outcome.results.get(d, {}).get("status", "").startswith(("failed", "blocked"))
                ]
                result = {
                    "status": "blocked",
                    "task": task.name,
                    "reason": f"after failed {', '.join(needs) or exception.get_msg().strip()}",
                }
            self._report(result)

        def runtime_error(self, msg: str) -> None:
            console.line(f"error: {msg}", always=True)

        def complete_run(self) -> None:
            self.done.set()

        def _report(self, result: dict[str, Any]) -> None:
            report_step(console, outcome, result)

    return Reporter


def report_step(console: _Console, outcome: Outcome, result: dict[str, Any]) -> None:
    """One finished step: recorded in the outcome, one line on the console (every executor calls this)."""
    outcome.results[result["task"]] = result
    secs = result.get("seconds_wall", 0.0)
    notes = [n for n in (result.get("reason"), result.get("remote"), result.get("where")) if n]
    extra = f"  ({'; '.join(notes)})" if notes else ""
    failed = result["status"].startswith("failed")
    console.line(f"  {result['status']:<16} {secs:7.2f}s  {result['task']}{extra}", always=failed)
    if failed:
        console.line(f"      {result.get('error', '')}", always=True)


def run_steps(steps: list[Step], envs: dict[str, dict[str, Any]], jobs: int = 1, quiet: bool = False) -> Outcome:
    """Execute the steps' doit tasks; independent ones in parallel processes when jobs > 1.

    `envs` maps a recipe name to its build settings (several recipes may share one run)."""
    from doit.cmd_base import TaskLoader2
    from doit.doit_cmd import DoitMain
    from doit.task import dict_to_task

    from recipekit.core import lifetime

    lifetime.sweep_stale()  # what a SIGKILLed build left in the temp folder
    outcome, console = Outcome(), _Console(quiet)
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    tasks = [to_task(s, {**envs[s.task.split(":", 1)[0]], "threads": threads}) for s in steps]
    with tempfile.TemporaryDirectory(prefix=f"recipekit-doit-{os.getpid()}-") as tmp:
        config = {
            "dep_file": os.path.join(tmp, "db.json"),
            "backend": "json",
            "verbosity": 2,
            "continue": True,
            "reporter": _reporter_class(outcome, console),
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
    console.stream.flush()
    return outcome
