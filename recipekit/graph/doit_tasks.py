"""recipekit's steps as doit tasks: one plain dict per step, what every executor runs.

A step's task: name = the step's task name (`<recipe>:<kind>:<plugin>`), `task_dep` = the steps it
reads, one module-level action running the step (graph.execute.run_step), `uptodate` asking the
content-addressed cache (graph.settled.current: doit's own state never decides whether a step is
built), `clean` evicting the step's cache entry and those of every step built from it (so the
next build rebuilds exactly those). Each recipe also gets a task named after it, depending on its
publish steps (`doit yolo11n`). Arguments are JSON data and module-level functions, so tasks pickle
for doit's process runner and travel to Dask workers unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from doit.exceptions import TaskFailed

if TYPE_CHECKING:
    from collections.abc import Iterator

    from recipekit.graph.plan import Step

KNOWN: dict[str, dict[str, Any]] = {}
"""task -> its result, as the up-to-date check found it (the reporter in the same process reads it)."""


class StepFailure(TaskFailed):
    """A step that failed, to doit: the failure carries the step's result (error, log, status)."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(str(result.get("error") or result.get("reason") or result["status"]))
        self.result = result


def run(step: dict[str, Any], settings: dict[str, Any], skipped: dict[str, Any], results: Any = None) -> Any:
    """The action of a step's task: its result (a dict, doit's task values), or a StepFailure."""
    from recipekit.graph.execute import run_step

    given = {task: getattr(r, "result", r) for task, r in results.items()} if results else None  # Dask's
    result = run_step(step, settings, skipped, given)
    return StepFailure(result) if result["status"].startswith(("failed", "blocked")) else result


def up_to_date(step: dict[str, Any], settings: dict[str, Any], skipped: dict[str, Any]) -> bool:
    """doit's `uptodate`: True when the caches say the step needs no work. Never raises: a step whose
    status cannot be read runs, and reports why."""
    from recipekit.graph.plan import Step
    from recipekit.graph.settled import current

    try:
        known = current(Step(**step), settings, skipped)
    except Exception:  # noqa: BLE001 - the step runs and its own run reports the problem
        return False
    if known is None:
        return False
    KNOWN[step["task"]] = {**known, "task": step["task"]}
    return True


def evict(task: str, keys: list[str], cache: str) -> None:
    """doit's `clean`: take the step's entry (and those built from it) out of the cache."""
    from recipekit.cache.store import Store

    store = Store(cache)
    gone = [k for k in keys if store.read(k) is not None]
    for key in gone:
        store.remove(key)
    print(f"{task}: {len(gone)} cache entr{'y' if len(gone) == 1 else 'ies'} evicted of {len(keys)}")


def _downstream(steps: list[Step]) -> dict[str, list[str]]:
    """Per step, the steps built from it (directly or not), in plan order."""
    below: dict[str, set[str]] = {s.task: set() for s in steps}
    for s in reversed(steps):  # plan order: upstreams first, so dependents are complete when reached
        for dep in s.deps.values():
            below[dep] |= {s.task} | below[s.task]
    return {t: [s.task for s in steps if s.task in tasks] for t, tasks in below.items()}


def _doc(step: Step) -> str:
    what = f"{step.kind} {step.plugin}"
    if step.kind == "gate":
        what = f"{'lint' if step.config.get('stage') == 'pre' else 'gate'} {step.plugin} of {step.target}"
    elif step.kind in ("compile", "publish"):
        what = f"{step.kind} {step.target}"
    return f"{what} (cache key {step.key[:12]})" if step.kind != "publish" else what


def step_tasks(steps: list[Step], settings_by_recipe: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The doit task dicts of (keyed) `steps`; `settings_by_recipe`: recipe name -> build settings."""
    from recipekit.graph.settled import plan_skip

    by_task, below = {s.task: s for s in steps}, _downstream(steps)
    for s in steps:
        settings = settings_by_recipe[s.task.split(":", 1)[0]]
        skipped = {d: r for d in s.deps.values() if (r := plan_skip(by_task.get(d)))}
        step = s.to_dict()
        keys = [by_task[t].key for t in [s.task, *below[s.task]] if by_task[t].kind != "publish"]
        yield {
            "basename": s.task,
            "doc": _doc(s),
            "actions": [(run, [step, settings, skipped])],
            "task_dep": list(dict.fromkeys(s.deps.values())),
            "uptodate": [(up_to_date, [step, settings, skipped])],
            "clean": [(evict, [s.task, keys, settings["cache"]])],
            "io": {"capture": False},
            "meta": {"recipekit": {"kind": s.kind, "target": s.target, "key": s.key}},
        }
    for name in dict.fromkeys(s.task.split(":", 1)[0] for s in steps):
        publish = [s.task for s in steps if s.kind == "publish" and s.task.startswith(f"{name}:")]
        targets = ", ".join(by_task[t].target or "" for t in publish)
        yield {"basename": name, "doc": f"build {name} for {targets}", "actions": None, "task_dep": publish}


def step_of(task: dict[str, Any]) -> dict[str, Any] | None:
    """The step (as JSON) a task dict runs, or None for a task that is not a step (a recipe's group)."""
    actions = task.get("actions") or []
    return actions[0][1][0] if actions and actions[0][0] is run else None
