"""The fix step: source fixes' guarantees, then the ONNX fixes in order, each recorded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core.errors import StepFailed
from recipekit.fixes import FIXES
from recipekit.fixes.base import FixContext

if TYPE_CHECKING:
    import onnx

    from recipekit.graph.run import Run


def _fix(item: dict[str, Any]) -> Any:
    cls = FIXES.get(item["name"])
    return cls(cls.Config.model_validate(item["config"]))


def _onnx_fix(run: Run, model: onnx.ModelProto, item: dict[str, Any], ctx: FixContext) -> tuple[Any, dict[str, Any]]:
    fix, before = _fix(item), len(model.graph.node)
    check = fix.check(model, ctx)
    record = {"name": item["name"], "stage": "onnx", "why": check.why, "nodes_before": before}
    if check.status == "cannot-apply":
        raise StepFailed(run.step["task"], f"fix {item['name']} cannot apply: {check.why}")
    if check.status == "applies":
        model = fix.apply(model, ctx)
    guarantee = fix.guarantee(model, ctx)
    record.update(
        status="applied" if check.status == "applies" else "not-needed",
        nodes_after=len(model.graph.node),
        guarantee={"ok": guarantee.ok, "detail": guarantee.detail},
    )
    if not guarantee.ok:
        raise StepFailed(run.step["task"], f"fix {item['name']} did not meet its guarantee: {guarantee.detail}")
    return model, record


def _source_guarantees(run: Run, model: onnx.ModelProto, ctx: FixContext) -> list[dict[str, Any]]:
    records = []
    applied = {r["name"]: r for r in run.up["export"]["result"].get("source_fixes", [])}
    for item in run.step["config"]["source_fixes"]:
        record = dict(applied.get(item["name"], {"name": item["name"], "stage": "source", "status": "not-needed"}))
        record["nodes_after"] = len(model.graph.node)
        if record["status"] == "applied":
            g = _fix(item).guarantee(model, ctx)
            record["guarantee"] = {"ok": g.ok, "detail": g.detail}
            if not g.ok:
                raise StepFailed(run.step["task"], f"fix {item['name']} did not meet its guarantee: {g.detail}")
        records.append(record)
    return records


def io_info(model: onnx.ModelProto) -> dict[str, list[dict[str, Any]]]:
    """Names, shapes (ints or symbolic names) and dtypes of the graph's inputs and outputs."""
    import onnx

    def describe(values: Any) -> list[dict[str, Any]]:
        out = []
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
            out.append({"name": v.name, "shape": dims, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name})
        return out

    inits = {i.name for i in model.graph.initializer}
    return {
        "inputs": describe(i for i in model.graph.input if i.name not in inits),
        "outputs": describe(model.graph.output),
    }


def apply_chain(run: Run, work: Path) -> dict[str, Any]:
    import onnx

    from recipekit.onnx.util import drop_volatile_metadata

    ctx = FixContext(run.recipe)
    model = onnx.load(str(run.upstream_dir("export") / "model.onnx"))
    records = _source_guarantees(run, model, ctx)
    for item in run.step["config"]["fixes"]:
        model, record = _onnx_fix(run, model, item, ctx)
        records.append(record)
    model = drop_volatile_metadata(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(work / "model.onnx"))
    return {"fixes": records, "io": io_info(model), "nodes": len(model.graph.node)}
