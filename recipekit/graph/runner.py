"""Run steps: as doit tasks (graph.doit_tasks) on doit's runner, in this process for -j 1, on worker
processes for -j N (graph/executors/local.py); on a Dask cluster with `--scheduler` (executors/cluster.py).

Every run reports through step events (core.events); what is shown (live view, plain lines, JSON)
is the event sink's business (recipekit.report.console), never the runner's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core.events import EventSink, discard
from recipekit.graph.results import Outcome

if TYPE_CHECKING:
    from recipekit.graph.executors.workers import Forkserver
    from recipekit.graph.plan import Step


def settings_of(settings_by_recipe: dict[str, dict[str, Any]], task: str) -> dict[str, Any]:
    """The build settings of the recipe `task` belongs to (task names start with `<recipe>:`)."""
    return settings_by_recipe[task.split(":", 1)[0]]


def build_settings(recipe: Any, file: str, cache: Path, out: Path, **options: Any) -> dict[str, Any]:
    """A recipe's build settings, as every step of its build reads them. `options`: remote_cache,
    remote_mode, force, require (command-line choices)."""
    from recipekit.recipe.dump import to_raw

    return {
        "remote_cache": options.get("remote_cache"),
        "remote_mode": options.get("remote_mode", "read-write"),
        "recipe": to_raw(recipe),
        "file": str(file),
        "base_dir": recipe.base_dir,
        "cache": str(Path(cache).resolve()),
        "out": str(Path(out).resolve()),
        "force": bool(options.get("force")),
        "require": bool(options.get("require")),
    }


def run_steps(
    steps: list[Step],
    settings_by_recipe: dict[str, dict[str, Any]],
    jobs: int = 1,
    events: EventSink = discard,
    warm: Forkserver | None = None,
) -> Outcome:
    """Execute the steps as doit tasks: in this process for -j 1, on `jobs` worker processes for
    -j N (started only when a step must be built); with `warm` (a forkserver the console command
    started before composing) on its workers, -j 1 included.

    `settings_by_recipe` maps a recipe name to its build settings (several recipes may share one
    run); `events` receives a StepEvent as each step starts and finishes. Steps are keyed first
    (graph.keys), stale temporary folders of killed builds are removed, and the build holds its keys
    (for `gc`)."""
    from contextlib import ExitStack

    from recipekit.cache.store import Store
    from recipekit.core import lifetime
    from recipekit.graph import settled
    from recipekit.graph.keys import key_steps

    steps = key_steps(steps, settings_by_recipe)
    settled.forget_stores()
    with ExitStack() as stack:
        for root in sorted({str(Path(s["cache"]).resolve()) for s in settings_by_recipe.values()}):
            store = Store(root)
            store.clean_tmp()
            mine = [
                s.key for s in steps if str(Path(settings_of(settings_by_recipe, s.task)["cache"]).resolve()) == root
            ]
            stack.enter_context(store.hold(mine))
        lifetime.sweep_stale()
        pool = jobs > 1 or (warm is not None and warm.started)
        if pool:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            settings_by_recipe = {n: {**s, "threads": threads} for n, s in settings_by_recipe.items()}
        with lifetime.supervised_run():  # Ctrl-C/SIGTERM: workers stopped at once, one orderly stop
            return _run(steps, settings_by_recipe, jobs if pool else 0, events, warm)


def _run(
    steps: list[Step], settings_by_recipe: dict[str, dict[str, Any]], jobs: int, events: EventSink, warm: Any
) -> Outcome:
    from recipekit.core.events import StepEvent
    from recipekit.graph.doit_tasks import step_tasks
    from recipekit.graph.executors.events import StepReporter
    from recipekit.graph.executors.local import BuildRun, Main, RunSpec, StepLoader, doit_config
    from recipekit.graph.executors.workers import Forkserver

    outcome = Outcome()
    tasks = list(step_tasks(steps, settings_by_recipe))
    cache = next(iter(settings_by_recipe.values()))["cache"]
    config = doit_config(cache, reporter=StepReporter(events, outcome.results), default_tasks=[s.task for s in steps])
    server = warm if warm is not None and warm.started else Forkserver()
    try:
        code = Main(StepLoader(tasks, config, RunSpec(jobs, server, steps, settings_by_recipe)), (BuildRun,)).run(
            ["run", "--continue"]
        )
    finally:
        if server is not warm:
            server.stop()
    if code == 3 and not outcome.results:  # doit could not start (it printed why on stderr)
        events(StepEvent.run_error("doit could not run the build's tasks"))
    outcome.exit_code = 1 if outcome.failed() or code == 3 else 0
    return outcome
