"""Status without execution: which steps are cached, which would run, and why (`recipekit plan`).

Uses the stages themselves in dry mode, so the keys shown are the keys a build would use.
"""

from __future__ import annotations

from typing import Any

from recipekit.graph.plan import Step


def statuses(steps: list[Step], env: dict[str, Any]) -> list[dict[str, Any]]:
    from recipekit.graph.run import Run
    from recipekit.graph.stages import STAGES

    dry_env = {**env, "dry": True}
    done: dict[str, dict[str, Any]] = {}
    rows = []
    for step in steps:
        waiting = [d for d in step.deps.values() if done.get(d, {}).get("status") not in {"cached"}]
        if step.kind == "publish":
            row = {"status": "publish", "key": None, "why": f"after {len(step.deps)} steps"}
        elif waiting:
            row = {"status": "pending", "key": None, "why": f"after {waiting[0]}"}
        else:
            up = {role: {**done[dep], "task": dep} for role, dep in step.deps.items()}
            row = STAGES[step.kind](Run(step.to_dict(), dry_env, up))
            row = {k: row.get(k) for k in ("status", "key", "why", "path", "digest", "result", "reason")}
            if row["status"] == "skipped":
                row["status"] = "cached"
        done[step.task] = row
        rows.append({"task": step.task, **{k: v for k, v in row.items() if k in ("status", "key", "why")}})
    return rows
