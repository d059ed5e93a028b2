"""Steps -> doit task dicts (plain data; actions are module-level functions with JSON arguments)."""

from __future__ import annotations

import json
from typing import Any

from recipekit.graph.plan import Step

TASK_KEYS = {"name", "actions", "getargs", "task_dep", "verbosity", "doc"}


def action(step: dict[str, Any], env: dict[str, Any], **up: dict[str, Any]) -> Any:
    """doit python-action: run the step; a failed step becomes doit's TaskFailed (dependents skip)."""
    from doit.exceptions import TaskFailed

    from recipekit.graph.execute import execute

    upstream = {role: {**res, "task": step["deps"][role]} for role, res in up.items()}
    result = execute(step, env, upstream)
    result["task"] = step["task"]
    if result["status"].startswith("failed"):
        return TaskFailed(json.dumps(result))
    return result


def to_task(step: Step, env: dict[str, Any]) -> dict[str, Any]:
    task = {
        "name": step.task,
        "actions": [(action, [step.to_dict(), env])],
        "getargs": {role: (dep, None) for role, dep in step.deps.items()},
        "task_dep": list(step.deps.values()),
        "verbosity": 2,
        "doc": f"{step.kind} {step.plugin}",
    }
    assert set(task) <= TASK_KEYS  # noqa: S101 - internal invariant: only known doit keys
    return task
