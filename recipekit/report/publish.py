"""Publish: copy a target's artifact and write manifest.json, only when every gate passed.

`build/<name>/<target>/` is replaced as a whole (written beside it, then swapped in), so readers
never see a half-published target, and an unchanged manifest means nothing is rewritten.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core import tools
from recipekit.recipe.dump import to_raw

if TYPE_CHECKING:
    from recipekit.graph.run import Run

PUBLISHED_OK = ("passed", "skipped")
VOLATILE = ("timings_ms", "per_batch")
"""Gate figures that are measurements of time: they differ run to run, so they go to timings.json
beside the manifest (not part of the artifact's files, nor of a release), keeping manifest.json
byte-identical across clean builds."""


def split_volatile(gates: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    stable, volatile = {}, {}
    for name, result in gates.items():
        figures = dict(result.get("figures") or {})
        moved = {k: figures.pop(k) for k in VOLATILE if k in figures}
        stable[name] = {**result, "figures": figures}
        if moved:
            volatile[name] = moved
    return stable, volatile


def manifest(run: Run) -> dict[str, Any]:
    """Everything a user of the artifact needs to know, deterministic (no timestamps)."""
    comp, fixr, exp = run.up["compile"], run.up["fix"]["result"], run.up["export"]["result"]
    files = {
        n: d for n, d in json.loads((Path(comp["path"]) / "meta.json").read_text())["files"].items() if n != "meta.json"
    }
    artifact = comp["result"]["artifact"]
    gates, _ = split_volatile(
        {role.split(".", 1)[1]: up["gate"] for role, up in sorted(run.up.items()) if role.startswith("gate.")}
    )
    io = comp["result"]["manifest"].get("io", fixr["io"])
    return {
        "name": run.recipe.name,
        "target": run.step["target"],
        "status": "passed",
        "artifact": {"path": artifact, "sha256": files[artifact]},
        "files": files,
        "inputs": io["inputs"],
        "outputs": io["outputs"],
        "output_kinds": exp["output_kinds"],
        "preprocess": run.recipe.input.preprocess.model_dump(mode="json"),
        "source": {"kind": run.recipe.source.kind, "init": exp["init"], "notes": exp["notes"]},  # type: ignore[attr-defined]
        "fixes": fixr["fixes"],
        "gates": gates,
        "target_facts": comp["result"]["manifest"],
        "steps": {up["task"]: up["key"] for up in run.up.values() if up.get("key")},
        "tools": tools.versions(),
        "recipe": to_raw(run.recipe),
    }


def _same(dest: Path, doc: dict[str, Any]) -> bool:
    try:
        return json.loads((dest / "manifest.json").read_text()) == doc and all(
            (dest / f).is_file() for f in doc["files"]
        )
    except (OSError, ValueError):
        return False


def _swap_in(src_dir: Path, files: dict[str, str], doc: dict[str, Any], dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    for name in files:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src_dir / name, work / name)
    (work / "manifest.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    old = dest.parent / f".{dest.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.replace(dest, old)
    os.replace(work, dest)
    shutil.rmtree(old, ignore_errors=True)


def publish(run: Run) -> dict[str, Any]:
    comp = run.up["compile"]
    if comp.get("status") == "unavailable":
        return {"status": "unavailable", "reason": comp["reason"]}
    gates = {r: up for r, up in run.up.items() if r.startswith("gate.")}
    blocked = [r.split(".", 1)[1] for r, up in gates.items() if up["gate"]["status"] not in PUBLISHED_OK]
    if blocked:  # built, but a gate could not run here (no browser): never a silent pass
        why = "; ".join(f"{g}: {gates['gate.' + g]['gate'].get('message', '')}" for g in blocked)
        if run.env.get("require"):
            return {"status": "failed", "error": f"required gates did not run: {why}"}
        return {"status": "unverified", "reason": f"not published, gates did not run here: {why}"}
    for up in run.up.values():
        up.setdefault("task", "")
    doc = manifest(run)
    dest = Path(run.env["out"]) / run.recipe.name / run.step["target"]
    if _same(dest, doc):
        return {"status": "cached", "path": str(dest)}
    _swap_in(Path(comp["path"]), doc["files"], doc, dest)
    _, timings = split_volatile({r.split(".", 1)[1]: up["gate"] for r, up in gates.items()})
    if timings:
        (dest / "timings.json").write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")
    return {"status": "ran", "path": str(dest)}
