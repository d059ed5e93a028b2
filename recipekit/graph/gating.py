"""The gate step: build the GateContext, run the gate (cached by key), turn a failure into a step failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core import tools
from recipekit.core.errors import Unavailable
from recipekit.gates import GATES
from recipekit.graph.stages import ONNX_TOOLS, _golden_loader

if TYPE_CHECKING:
    from recipekit.gates.base import GateContext
    from recipekit.graph.run import Run


def _context(run: Run) -> GateContext:
    from recipekit.gates.base import GateContext
    from recipekit.targets import TARGETS
    from recipekit.targets.base import BuildResult, TargetContext

    fixed = run.upstream_dir("fix") / "model.onnx"
    kinds = run.up["export"]["result"]["output_kinds"]
    if run.step["config"]["stage"] == "pre":
        from recipekit.onnx.runtime import OrtRunner

        return GateContext(
            run.recipe,
            run.step["target"],
            fixed.parent,
            fixed.name,
            fixed,
            lambda: OrtRunner(fixed),
            _golden_loader(run),
            {},
            kinds,
        )
    comp = run.up["compile"]
    artifact_dir, res = Path(comp["path"]), BuildResult(**comp["result"])
    cls = TARGETS.get(run.step["target"])
    target = cls(cls.Config.model_validate(run.recipe.targets[run.step["target"]].config.model_dump()))
    tctx = TargetContext(run.recipe, run.store.root / "state" / run.step["target"], _golden_loader(run), kinds)
    return GateContext(
        run.recipe,
        run.step["target"],
        artifact_dir,
        res.artifact,
        fixed,
        lambda: target.runner(artifact_dir, res, tctx),
        _golden_loader(run),
        res.manifest,
        kinds,
    )


def run_gate(run: Run) -> dict[str, Any]:
    cls = GATES.get(run.step["plugin"])
    gate = cls(cls.Config.model_validate(run.step["config"]["gate"]))
    if gate.config.skip:
        return {"status": "skipped", "gate": {"status": "skipped", "passed": False, "message": gate.config.skip}}
    comp = run.up.get("compile")
    if comp and comp.get("status") == "unavailable":
        return {"status": "unavailable", "gate": {"status": "unavailable", "passed": False, "message": comp["reason"]}}

    def build(work: Path) -> dict[str, Any]:
        result = gate.check(_context(run)).to_json()
        if result["status"] == "unavailable":  # not cached: it may run on the next machine
            raise Unavailable(result["message"])
        (work / "result.json").write_text(json.dumps(result, indent=1, sort_keys=True, default=float))
        return result

    inputs = {role: run.up[role]["digest"] for role in ("fix", "golden", "compile") if role in run.up}
    inputs["environment"] = getattr(cls, "environment_key", dict)()  # e.g. the browser's version
    try:
        out = run.cached(cls.version, inputs, tools.versions(ONNX_TOOLS), build)
    except Unavailable as exc:
        return {"status": "unavailable", "gate": {"status": "unavailable", "passed": False, "message": exc.reason}}
    out["gate"] = out.pop("result")
    if out["gate"]["status"] == "failed":
        out["status"] = "failed" if out["status"] == "ran" else "failed (cached)"
        out["error"] = f"gate {run.step['plugin']} failed: " + "; ".join(out["gate"]["failures"][:5])
    elif out["gate"]["status"] == "unavailable":
        out["status"] = "unavailable"
    return out
