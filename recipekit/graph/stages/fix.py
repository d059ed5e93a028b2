"""The fix step: source fixes' guarantees, then the ONNX fixes in order, each recorded."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core import tools
from recipekit.core.errors import StepFailed
from recipekit.graph.stages.common import ONNX_TOOLS, KeyParts, fix_versions

if TYPE_CHECKING:
    import onnx

    from recipekit.fixes.base import FixContext
    from recipekit.graph.context import Output, StepContext
    from recipekit.graph.plan import Step
    from recipekit.graph.results import FixRecord, FixResult, IOInfo
    from recipekit.recipe.schema import Recipe


def key_parts(step: Step, recipe: Recipe) -> KeyParts:
    items = step.config["fixes"] + step.config["source_fixes"]
    chain = "2" if items else "2-as-exported"  # an empty chain passes the export's bytes on (pass_through)
    return KeyParts({"chain": chain, "fixes": fix_versions(items)}, tools.versions(ONNX_TOOLS))


def _fix(item: dict[str, Any]) -> Any:
    from recipekit.fixes import FIXES

    cls = FIXES.get(item["name"])
    return cls(cls.Config.model_validate(item["config"]))


def _onnx_fix(
    task: str, model: onnx.ModelProto, item: dict[str, Any], fctx: FixContext, bundles: list[str]
) -> tuple[Any, FixRecord]:
    from recipekit.fixes.base import not_needed
    from recipekit.graph.results import FixRecord

    fix, before = _fix(item), len(model.graph.node)
    skip = not_needed(type(fix), bundles)
    if skip:  # a workaround of a bundle the recipe does not ship: left out, not even checked
        return model, FixRecord(name=item["name"], stage="onnx", status="not-needed", why=skip,
                                nodes_before=before, nodes_after=before)  # fmt: skip
    check = fix.check(model, fctx)
    if check.status == "cannot-apply":
        raise StepFailed(task, f"fix {item['name']} cannot apply: {check.why}")
    if check.status == "applies":
        model = fix.apply(model, fctx)
    guarantee = fix.guarantee(model, fctx)
    if not guarantee.ok:
        raise StepFailed(task, f"fix {item['name']} did not meet its guarantee: {guarantee.detail}")
    record = FixRecord(
        name=item["name"],
        stage="onnx",
        status="applied" if check.status == "applies" else "not-needed",
        why=check.why,
        nodes_before=before,
        nodes_after=len(model.graph.node),
        guarantee={"ok": guarantee.ok, "detail": guarantee.detail},
    )
    return model, record


def _source_guarantees(ctx: StepContext, model: onnx.ModelProto, fctx: FixContext) -> list[FixRecord]:
    from recipekit.graph.results import FixRecord

    applied = {r.name: r for r in ctx.up("export").result.source_fixes}  # type: ignore[union-attr]
    records = []
    for item in ctx.config["source_fixes"]:
        record = applied.get(item["name"]) or FixRecord(name=item["name"], stage="source", status="not-needed")
        update: dict[str, Any] = {"nodes_after": len(model.graph.node)}
        if record.status == "applied":
            g = _fix(item).guarantee(model, fctx)
            update["guarantee"] = {"ok": g.ok, "detail": g.detail}
            if not g.ok:
                raise StepFailed(ctx.task, f"fix {item['name']} did not meet its guarantee: {g.detail}")
        records.append(record.model_copy(update=update))
    return records


def io_info(model: onnx.ModelProto) -> IOInfo:
    """Names, shapes (ints or symbolic names) and dtypes of the graph's inputs and outputs."""
    import onnx

    from recipekit.graph.results import IOInfo, TensorInfo

    def describe(values: Any) -> list[TensorInfo]:
        out = []
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
            out.append(TensorInfo(name=v.name, shape=dims, dtype=dtype))
        return out

    inits = {i.name for i in model.graph.initializer}
    return IOInfo(
        inputs=describe(i for i in model.graph.input if i.name not in inits), outputs=describe(model.graph.output)
    )


def pass_through(ctx: StepContext, work: Path) -> FixResult | None:
    """An empty chain (no fix, no source fix to guarantee): the export's own file, checked, as it is.
    Loading and saving it again would change nothing but cost both (a 10 MB detector: ~40 ms on a
    cold build's critical path). None when it still needs the rewrite: volatile metadata to drop,
    or external data (saved beside the model as the chain saves it)."""
    import onnx

    from recipekit.graph.results import FixResult
    from recipekit.onnx import external
    from recipekit.onnx.util import VOLATILE_METADATA

    if ctx.config["fixes"] or ctx.config["source_fixes"]:
        return None
    src = ctx.up("export").file("model.onnx")
    if external.has_external(src):
        return None
    model = onnx.load(str(src))
    if any(p.key in VOLATILE_METADATA for p in model.metadata_props):
        return None
    onnx.checker.check_model(str(src))
    shutil.copyfile(src, work / "model.onnx")
    return FixResult(fixes=[], io=io_info(model), nodes=len(model.graph.node))


def apply_chain(ctx: StepContext, work: Path) -> FixResult:
    import onnx

    from recipekit.fixes.base import FixContext
    from recipekit.graph.results import FixResult
    from recipekit.onnx import external
    from recipekit.onnx.util import drop_volatile_metadata

    fctx = FixContext(ctx.recipe)
    src = ctx.up("export").file("model.onnx")
    model = onnx.load(str(src))
    records = _source_guarantees(ctx, model, fctx)
    for item in ctx.config["fixes"]:
        model, record = _onnx_fix(ctx.task, model, item, fctx, ctx.config.get("bundles", []))
        records.append(record)
    model = drop_volatile_metadata(model)
    external.save(model, work / "model.onnx", external=external.has_external(src))
    onnx.checker.check_model(str(work / "model.onnx"))
    return FixResult(fixes=records, io=io_info(model), nodes=len(model.graph.node))


def run(ctx: StepContext) -> Output:
    return ctx.cached(lambda work: pass_through(ctx, work) or apply_chain(ctx, work))
