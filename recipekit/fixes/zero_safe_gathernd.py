"""zero-safe-gathernd: give a GatherND whose indices come from the data one sentinel index row, sliced off after.

GatherND after NonZero (torchvision RetinaNet's and FCOS's per-level candidate selection) gets zero
index rows when nothing scores above the threshold (a blank image). ONNX Runtime's CPU kernel
returns an empty result; onnxruntime-web's JSEP GatherND fails on empty int64 indices
("Unsupported data type: 7", measured with 1.30.0; field notes, case 1). This fix appends one
all-zero index row (a valid index into any non-empty data), gathers N + 1 slices and slices the
last one off, so every value is as before and the empty case yields an empty result.

Which GatherNDs: those whose indices are downstream of NonZero / NonMaxSuppression / TopK-like
ops (webgpu's static analysis of possibly empty tensors), with batch_dims 0 and a static index
depth. Others are reported and left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from recipekit.fixes.base import Check, FixContext, Guarantee, OnnxFix

if TYPE_CHECKING:
    import onnx

SUFFIX = "/zero_safe_gathernd"
EMPTY_SOURCES = {"NonMaxSuppression", "NonZero", "Compress", "Unique"}
# ops through which "may have zero rows" passes from input to output (row-preserving)
ROW_PRESERVING = {"Transpose", "Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Slice", "Gather", "Concat"}


class ZeroSafeGatherNd(OnnxFix):
    """Sentinel index row for GatherNDs whose indices can be empty (JSEP rejects empty int64 indices)."""

    name: ClassVar[str] = "zero-safe-gathernd"
    version: ClassVar[str] = "2"
    summary: ClassVar[str] = "one zero sentinel index row for GatherNDs whose indices can be empty (JSEP)"

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        rows = _analyse(model)
        todo = [r["name"] for r in rows if r["fixable"] and not r["guarded"]]
        if todo:
            return Check("applies", f"{len(todo)} GatherND(s) with possibly empty indices: {', '.join(todo[:5])}")
        return Check("not-needed", _left(rows) or "no unguarded GatherND has possibly empty indices")

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        import onnx

        out = onnx.ModelProto()
        out.CopyFrom(model)
        nodes = list(out.graph.node)
        for r in [r for r in _analyse(out) if r["fixable"] and not r["guarded"]]:
            at = nodes.index(r["node"])
            before, after = _guard(out, r)
            nodes[at : at + 1] = [*before, r["node"], *after]
        del out.graph.node[:]
        out.graph.node.extend(nodes)
        return out

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        rows = _analyse(model)
        open_ = [r["name"] for r in rows if r["fixable"] and not r["guarded"]]
        if open_:
            return Guarantee(False, f"GatherND(s) with possibly empty indices and no sentinel: {', '.join(open_[:5])}")
        guarded = sum(r["guarded"] for r in rows)
        left = _left(rows)
        return Guarantee(
            True,
            f"{guarded} GatherND(s) with possibly empty indices gather a sentinel row" + (f"; {left}" if left else ""),
        )


def _left(rows: list[dict[str, Any]]) -> str:
    left = [r for r in rows if not r["fixable"] and not r["guarded"]]
    return f"{len(left)} GatherND(s) left ({left[0]['why']}): {', '.join(r['name'] for r in left[:5])}" if left else ""


def _maybe_empty(model: onnx.ModelProto) -> set[str]:
    empty: set[str] = set()
    for node in model.graph.node:
        if node.op_type in EMPTY_SOURCES or (node.op_type in ROW_PRESERVING and node.input and node.input[0] in empty):
            empty.update(node.output)
    return empty


def _analyse(model: onnx.ModelProto) -> list[dict[str, Any]]:
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(model, data_prop=True).graph
    dims = {v.name: v.type.tensor_type.shape.dim for v in [*inferred.value_info, *inferred.input]}
    producers = {o: n for n in model.graph.node for o in n.output}
    empty = _maybe_empty(model)
    rows = []
    for node in model.graph.node:
        if node.op_type != "GatherND":
            continue
        prod = producers.get(node.input[1])
        guarded = prod is not None and prod.name == (node.name or "gathernd") + SUFFIX
        if not guarded and node.input[1] not in empty:
            continue
        batch = next((a.i for a in node.attribute if a.name == "batch_dims"), 0)
        idx = dims.get(node.input[1])
        depth = idx[-1].dim_value if idx is not None and len(idx) and idx[-1].HasField("dim_value") else None
        why = "batch_dims > 0" if batch else ("index depth not static" if depth is None else "")
        name = node.name or node.output[0]
        rows.append({"node": node, "name": name, "depth": depth, "fixable": not why, "why": why, "guarded": guarded})
    return rows


def _guard(model: onnx.ModelProto, row: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """Concat(indices, zero row) before the GatherND, Slice(rows 0..-1) after; the output name is kept."""
    import numpy as np
    from onnx import helper, numpy_helper

    node = row["node"]
    if not node.name:  # a name of its own, so that two unnamed nodes never share the added tensors
        node.name = node.output[0]
    base = node.name + SUFFIX
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(np.zeros((1, row["depth"]), np.int64), base + "/zero_row"),
            numpy_helper.from_array(np.array([0], np.int64), base + "/start"),
            numpy_helper.from_array(np.array([-1], np.int64), base + "/end"),
        ]
    )
    padded, wide, result = base + "/indices", base + "/y", node.output[0]
    concat = helper.make_node("Concat", [node.input[1], base + "/zero_row"], [padded], name=base, axis=0)
    node.input[1] = padded
    node.output[0] = wide
    slice_ = helper.make_node(
        "Slice", [wide, base + "/start", base + "/end", base + "/start"], [result], name=base + "/slice"
    )
    return [concat], [slice_]
