"""What is known of a step without running it. The content-addressed cache is the only truth.

- `settled`: a step's result when its entry is in the local cache (or, read only, in the remote
  one), or when the plan skips it (a gate with `skip`). A failed gate's entry is known as
  `failed (cached)`.
- `current`: the result of a step that needs no work (doit's `uptodate` asks this): a passing
  entry in the local cache, a skipped gate, a publish whose folder already holds exactly what it
  would publish. An entry only the remote cache holds is not current: the step runs and fetches it
  (every file verified; a rejected one is rebuilt), in the build's own process (`in_remote`).
- `upstream`: the outputs a step reads, each from the caches; a result that has no entry
  (`unavailable`: no GPU, no browser) comes from the note its step wrote when it ran, in this build.

Nothing here trusts doit's own state: a deleted or stale doit database changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recipekit.cache.store import Store
    from recipekit.graph.context import Output
    from recipekit.graph.plan import Step

NOTES = "notes"
"""Folder of the cache holding the last result of steps that file no entry (`unavailable`)."""

_STORES: dict[str, Store] = {}
_IN_REMOTE: set[str] = set()


def store_of(settings: dict[str, Any]) -> Store:
    """One Store per cache folder and process (its digest memo is read once)."""
    from recipekit.cache.store import Store

    root = str(Path(settings["cache"]).resolve())
    if root not in _STORES:
        _STORES[root] = Store(root)
    return _STORES[root]


def forget_stores() -> None:
    """A new run reads the caches afresh."""
    _STORES.clear()
    _IN_REMOTE.clear()


def in_remote(key: str) -> bool:
    """Whether the up-to-date check found `key`'s entry in the remote cache only (its step fetches it)."""
    return key in _IN_REMOTE


def kind_of(role: str) -> str:
    """The step kind behind an upstream role (`lint.trt-lint` and `gate.parity` are gates)."""
    kind = role.split(".", 1)[0]
    return "gate" if kind in ("lint", "gate") else kind


def _from_meta(task: str, kind: str, key: str, meta: dict[str, Any], path: Path | None, remote: str = "") -> Output:
    from recipekit.graph.context import Output
    from recipekit.graph.results import result_type

    model, raw = result_type(kind), meta.get("result")
    result = model.model_validate(raw) if model is not None and raw is not None else None
    files = {n: d for n, d in meta["files"].items() if n != "meta.json"}
    status, error = "cached", ""
    if kind == "gate" and getattr(result, "status", "") == "failed":
        status, error = "failed (cached)", "gate failed: " + "; ".join(result.failures[:5])  # type: ignore[union-attr]
    return Output(task, kind, status, key, path, files, result, error=error, seconds=meta.get("seconds"), remote=remote)


def settled(
    task: str, kind: str, key: str, settings: dict[str, Any], skip: tuple[str, str] | list[str] | None = None
) -> Output | None:
    """What the plan or the caches say of a step without running it, or None (it must run). `skip`:
    the (verdict, reason) of a gate the plan does not run (plan_skip)."""
    if skip:
        from recipekit.graph.stages.gate import skipped

        verdict, reason = skip
        return skipped(task, key, reason, verdict)
    entry = store_of(settings).get(key)
    if entry is not None:
        return _from_meta(task, kind, key, entry.meta, entry.path)
    return _in_remote(task, kind, key, settings)


def _in_remote(task: str, kind: str, key: str, settings: dict[str, Any]) -> Output | None:
    """The remote cache's entry for `key`, read (its meta only: the files are fetched by the step
    that reads them, verified). An unreachable or rejected remote is a miss: the step runs."""
    from recipekit.cache.remote import from_settings

    remote = from_settings(settings)
    if remote is None:
        return None
    try:
        meta = remote.read_meta(key)
    except Exception:  # noqa: BLE001 - the step runs and reports what the remote did
        return None
    return _from_meta(task, kind, key, meta, None, remote=f"in remote {remote.shown}") if meta else None


def current(step: Step, settings: dict[str, Any], skipped: dict[str, Any]) -> dict[str, Any] | None:
    """The result of `step` when it needs no work, as its event reports it; None when it must run."""
    skip = plan_skip(step)
    if skip:
        return settled(step.task, step.kind, step.key, settings, skip).to_json()  # type: ignore[union-attr]
    if settings.get("force"):
        return None
    if step.kind == "publish":
        return _publish_current(step, settings, skipped)
    out = settled(step.task, step.kind, step.key, settings)
    if out is not None and out.path is None:  # the remote cache's: fetched (verified) by the step itself
        _IN_REMOTE.add(step.key)
        return None
    return out.to_json() if out is not None and out.status == "cached" else None


def _publish_current(step: Step, settings: dict[str, Any], skipped: dict[str, Any]) -> dict[str, Any] | None:
    from recipekit.graph.context import StepContext
    from recipekit.graph.stages.publish import unchanged

    up = {}
    for role, dep in step.deps.items():
        out = settled(dep, kind_of(role), step.inputs["upstream"][role], settings, skipped.get(dep))
        if out is None or out.status not in ("cached", "skipped"):
            return None
        up[role] = out
    out = unchanged(StepContext(step, settings, up))
    return out.to_json() if out is not None else None


def plan_skip(step: Step | None) -> tuple[str, str] | None:
    """(verdict, reason) of a gate the plan does not run: `skipped` (configured with `skip`) or `not
    applicable` (decided at plan with the whole recipe, e.g. parity on INT8); None for any other step."""
    if step is None or step.kind != "gate":
        return None
    if step.config.get("gate", {}).get("skip"):
        return ("skipped", str(step.config["gate"]["skip"]))
    if step.config.get("not_applicable"):
        return ("not applicable", str(step.config["not_applicable"]))
    return None


def upstream(
    step: Step, settings: dict[str, Any], skipped: dict[str, Any], given: dict[str, Any] | None = None
) -> dict[str, Output]:
    """Every output `step` reads, by role: `given` results (a Dask run hands them over), else the
    caches, else the note of a step that filed no entry; StepFailed when none has it."""
    from recipekit.core.errors import StepFailed
    from recipekit.graph.context import Output

    out = {}
    for role, dep in step.deps.items():
        key = step.inputs["upstream"][role]
        if given and dep in given:
            found: Output | None = Output.from_json(role, {**given[dep], "task": dep})
        else:
            found = settled(dep, kind_of(role), key, settings, skipped.get(dep)) or read_note(settings, role, key)
        if found is None:
            raise StepFailed(
                step.task, f"upstream {dep} has no result (entry {key[:12]} is in no cache): build it first"
            )
        out[role] = found
    return out


def write_note(settings: dict[str, Any], result: dict[str, Any]) -> None:
    """Remember the result of a step that files no entry, for the steps after it (this build)."""
    from recipekit.cache.fs import atomic_write_text

    folder = store_of(settings).root / NOTES
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / f"{result['key']}.json", json.dumps(result, sort_keys=True))


def read_note(settings: dict[str, Any], role: str, key: str) -> Output | None:
    from recipekit.graph.context import Output

    try:
        data = json.loads((store_of(settings).root / NOTES / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key or data.get("status") != "unavailable":
        return None
    return Output.from_json(role, data)
