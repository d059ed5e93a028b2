"""Status without execution (`recipekit plan`): every step's key, and whether its entry is cached.

Keys come from graph.keys (no step runs), entries are checked read-only (a corrupt one shows as
`run`), and nothing is written: no memo, no folders.
"""

from __future__ import annotations

from typing import Any

from recipekit.graph.plan import Step


def statuses(steps: list[Step], settings: dict[str, Any]) -> list[dict[str, Any]]:
    from recipekit.cache.store import Store
    from recipekit.graph.keys import assign_keys

    store = Store(settings["cache"], readonly=True)
    rows = []
    for step in assign_keys(steps, settings, readonly=True):
        if step.kind == "publish":
            row = {"status": "publish", "why": f"after {len(step.deps)} steps"}
        elif step.kind == "gate" and step.config["gate"].get("skip"):
            row = {"status": "skipped", "why": step.config["gate"]["skip"]}
        elif step.kind == "gate" and step.config.get("not_applicable"):
            row = {"status": "skipped", "why": f"not applicable: {step.config['not_applicable']}"}
        elif settings.get("force"):
            row = {"status": "run", "why": "forced"}
        elif store.get(step.key) is not None:
            row = {"status": "cached"}
        elif remote := _in_remote(settings, step.key):
            row = {"status": "cached", "why": f"in remote {remote}"}
        else:
            problem = store.problems.get(step.key)
            row = {"status": "run", "why": f"corrupt entry: {problem}" if problem else "not in cache"}
        rows.append({"task": step.task, "key": step.key, **row})
    return rows


def _in_remote(settings: dict[str, Any], key: str) -> str | None:
    """The remote cache (shown redacted) holding `key`'s entry, if any: its meta is read, nothing downloaded."""
    from recipekit.cache.remote import from_settings

    remote = from_settings(settings)
    if remote is None:
        return None
    try:
        return remote.shown if remote.read_meta(key) is not None else None
    except Exception:  # noqa: BLE001 - plan shows what a build would do: rebuild
        return None
