"""Publish: copy a target's artifact and write manifest.json, only when every gate passed.

`build/<name>/<target>/` is replaced as a whole (written beside it, then swapped in), so readers
never see a half-published target. An unchanged manifest whose published files still match its
digests means nothing is rewritten; a published file that differs (edited, truncated) is
republished, and `--force` always republishes. The copied bytes are checked against the
manifest before the folder is swapped in.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core import tools
from recipekit.core.errors import StepFailed
from recipekit.graph.stages.common import KeyParts

if TYPE_CHECKING:
    from recipekit.cache.digests import DigestMemo
    from recipekit.graph.context import Output, StepContext
    from recipekit.graph.plan import Step
    from recipekit.recipe.schema import Recipe

PUBLISHED_OK = ("passed", "skipped")
VOLATILE = ("timings_ms", "per_batch")
"""Gate figures that are measurements of time: they differ run to run, so they go to timings.json
beside the manifest (not part of the artifact's files, nor of a release), keeping manifest.json
byte-identical across clean builds."""


def key_parts(step: Step, recipe: Recipe) -> KeyParts:
    return KeyParts("2", tools.versions())


def split_volatile(gates: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    stable, volatile = {}, {}
    for name, result in gates.items():
        figures = dict(result.get("figures") or {})
        moved = {k: figures.pop(k) for k in VOLATILE if k in figures}
        stable[name] = {**result, "figures": figures}
        if moved:
            volatile[name] = moved
    return stable, volatile


def _gates(ctx: StepContext) -> dict[str, dict[str, Any]]:
    return {r.split(".", 1)[1]: up.result.to_json() for r, up in sorted(ctx.upstream.items()) if r.startswith("gate.")}  # type: ignore[union-attr]


def manifest(ctx: StepContext) -> dict[str, Any]:
    """Everything a user of the artifact needs to know, deterministic (no timestamps)."""
    from recipekit.recipe.dump import to_raw

    comp, fixr, exp = ctx.up("compile"), ctx.up("fix").result, ctx.up("export").result
    files = dict(comp.files)
    artifact = comp.result.artifact  # type: ignore[union-attr]
    facts = comp.result.manifest  # type: ignore[union-attr]
    gates, _ = split_volatile(_gates(ctx))
    io = facts.get("io") or fixr.io.to_json()  # type: ignore[union-attr]
    recipe = ctx.recipe
    return {
        "name": recipe.name,
        "target": ctx.step.target,
        "status": "passed",
        "artifact": {"path": artifact, "sha256": files[artifact]},
        "files": files,
        "inputs": io["inputs"],
        "outputs": io["outputs"],
        "output_kinds": exp.output_kinds,  # type: ignore[union-attr]
        "preprocess": recipe.input.preprocess.model_dump(mode="json"),
        "source": {"kind": recipe.source.kind, "init": exp.init, "notes": exp.notes},  # type: ignore[attr-defined,union-attr]
        "fixes": [f.to_json() for f in fixr.fixes],  # type: ignore[union-attr]
        "precision": _precision(ctx),
        "gates": gates,
        "target_facts": facts,
        "steps": {up.task: up.key for up in ctx.upstream.values() if up.key},
        "tools": tools.versions(),
        "recipe": to_raw(recipe),
    }


def _precision(ctx: StepContext) -> dict[str, Any]:
    """What the precision step made (Q/DQ counts or fp16 weights, calibration images); fp32: no step."""
    if "precision" not in ctx.upstream:
        return {"precision": "fp32"}
    return ctx.up("precision").result.to_json()  # type: ignore[union-attr]


def _mismatch(dest: Path, files: dict[str, str], memo: DigestMemo | None) -> str | None:
    """Why the folder's files are not exactly `files` (name -> sha256), or None."""
    from recipekit.cache.digests import file_sha256

    for name, digest in files.items():
        path = dest / name
        if not path.is_file():
            return f"{name} missing"
        if (memo.digest(path) if memo else file_sha256(path)) != digest:
            return f"{name} differs from the manifest"
    return None


def _same(dest: Path, doc: dict[str, Any], memo: DigestMemo) -> bool:
    try:
        return json.loads((dest / "manifest.json").read_text()) == doc and _mismatch(dest, doc["files"], memo) is None
    except (OSError, ValueError):
        return False


def _swap_in(ctx: StepContext, src_dir: Path, doc: dict[str, Any], dest: Path) -> None:
    from recipekit.cache.fs import share

    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for name in doc["files"]:
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src_dir / name, work / name)
        problem = _mismatch(work, doc["files"], None)
        if problem:
            raise StepFailed(ctx.task, f"refusing to publish: the copy of the cache entry does not match: {problem}")
        (work / "manifest.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        share(work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    old = dest.parent / f".{dest.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.replace(dest, old)
    os.replace(work, dest)
    shutil.rmtree(old, ignore_errors=True)


def _blocked(ctx: StepContext) -> Output | None:
    from recipekit.graph.context import Output

    comp = ctx.up("compile")
    if comp.status == "unavailable":
        return Output(ctx.task, "publish", "unavailable", reason=comp.reason)
    gates = {r.split(".", 1)[1]: up.result for r, up in ctx.upstream.items() if r.startswith("gate.")}
    not_run = [g for g, res in gates.items() if res.status not in PUBLISHED_OK]  # type: ignore[union-attr]
    if not not_run:
        return None
    why = "; ".join(f"{g}: {gates[g].message}" for g in not_run)  # type: ignore[union-attr]
    if ctx.settings.get("require"):
        return Output(ctx.task, "publish", "failed", error=f"required gates did not run: {why}")
    return Output(ctx.task, "publish", "unverified", reason=f"not published, gates did not run here: {why}")


def unchanged(ctx: StepContext) -> Output | None:
    """The step's output when the published folder already holds exactly what it would publish
    (nothing to do: doit's up-to-date check asks this), else None."""
    from recipekit.graph.context import Output

    if ctx.settings.get("force") or _blocked(ctx) is not None:
        return None
    dest = Path(ctx.settings["out"]) / ctx.recipe.name / (ctx.step.target or "")
    return Output(ctx.task, "publish", "cached", path=dest) if _same(dest, manifest(ctx), ctx.store.memo) else None


def run(ctx: StepContext) -> Output:
    from recipekit.graph.context import Output

    blocked = _blocked(ctx)
    if blocked is not None:  # built, but a gate could not run here (no browser): never a silent pass
        return blocked
    done = unchanged(ctx)
    if done is not None:
        return done
    doc = manifest(ctx)
    dest = Path(ctx.settings["out"]) / ctx.recipe.name / (ctx.step.target or "")
    _swap_in(ctx, ctx.up("compile").path, doc, dest)  # type: ignore[arg-type]
    _, timings = split_volatile(_gates(ctx))
    if timings:
        (dest / "timings.json").write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")
    return Output(ctx.task, "publish", "ran", path=dest)
