"""zero-safe-gemm: give a Gemm whose row count depends on the data one zero sentinel row, sliced off after.

A Gemm after NonMaxSuppression / NonZero / TopK (torchvision's RoI box head: fc6, fc7 and the
predictor) gets zero rows when an image yields no proposals. ONNX Runtime's CPU kernel returns an
empty result, but onnxruntime-web's JSEP Gemm rejects M = 0 ("invalid shape specified", measured
with 1.30.0), and rewriting Gemm as MatMul + Add does not help: ORT's MatMulAddFusion turns it
back into a Gemm. This fix appends one zero row to A (a Concat, which JSEP handles with an empty
input), runs the Gemm on M + 1 rows and slices the last row off the result, so every value is
computed as before and the empty case yields an empty result.

Which Gemms: those whose row dim (A's dim 0, or 1 with transA) is neither static nor a dim of a
graph input (a batch); ONNX shape inference with data propagation names the dims. A Gemm whose C
has one row per row of A, or whose inner dim is not static, is left (reported).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from recipekit.fixes.base import Check, FixContext, Guarantee, OnnxFix

if TYPE_CHECKING:
    import onnx

SUFFIX = "/zero_safe_gemm"


class ZeroSafeGemm(OnnxFix):
    """Sentinel row for Gemms whose row count comes from the data (empty-safe on JSEP WebGPU)."""

    name: ClassVar[str] = "zero-safe-gemm"
    version: ClassVar[str] = "2"
    summary: ClassVar[str] = "one zero sentinel row for Gemms with a data-dependent row count (JSEP rejects M=0)"

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        rows = _analyse(model)
        todo = [r["name"] for r in rows if r["fixable"] and not r["guarded"]]
        if todo:
            return Check("applies", f"{len(todo)} Gemm(s) with a data-dependent row count: {_names(todo)}")
        return Check("not-needed", _left(rows) or "no unguarded Gemm has a data-dependent row count")

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        import onnx

        out = onnx.ModelProto()
        out.CopyFrom(model)
        rows = [r for r in _analyse(out) if r["fixable"] and not r["guarded"]]
        nodes = list(out.graph.node)
        for r in rows:
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
            return Guarantee(False, f"Gemm(s) with a data-dependent row count and no sentinel row: {_names(open_)}")
        guarded = sum(r["guarded"] for r in rows)
        return Guarantee(
            True,
            f"{guarded} Gemm(s) with a data-dependent row count run on a sentinel row"
            + (f"; {_left(rows)}" if _left(rows) else ""),
        )


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def _left(rows: list[dict[str, Any]]) -> str:
    left = [r["name"] for r in rows if not r["fixable"] and not r["guarded"]]
    return f"{len(left)} Gemm(s) left as they are ({rows[0]['why'] if left else ''}): {_names(left)}" if left else ""


def _analyse(model: onnx.ModelProto) -> list[dict[str, Any]]:
    """Per Gemm with a data-dependent row count: is it fixable, is it already guarded."""
    from onnx import shape_inference

    g = model.graph
    inferred = shape_inference.infer_shapes(model, data_prop=True).graph
    dims = {v.name: _dims(v) for v in [*inferred.value_info, *inferred.input, *inferred.output]}
    dtypes = {v.name: v.type.tensor_type.elem_type for v in [*inferred.value_info, *inferred.input]}
    dtypes.update({i.name: i.data_type for i in g.initializer})
    batch = {d for i in g.input for d in (dims.get(i.name) or []) if isinstance(d, str)}
    producers = {o: n for n in g.node for o in n.output}
    rows = []
    for node in g.node:
        if node.op_type != "Gemm":
            continue
        trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
        a_dims = dims.get(node.input[0])
        if a_dims is None or len(a_dims) != 2:
            continue
        m, k = (a_dims[1], a_dims[0]) if trans_a else (a_dims[0], a_dims[1])
        guarded = _is_guard(producers.get(node.input[0]), node)
        if not guarded and (isinstance(m, int) or m in batch):
            continue
        c_dims = dims.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        per_row = c_dims is not None and len(c_dims) == 2 and c_dims[0] != 1
        why = "inner dim not static" if not isinstance(k, int) else ("C has a row per row of A" if per_row else "")
        rows.append(
            {
                "node": node,
                "name": node.name or node.output[0],
                "trans_a": bool(trans_a),
                "k": k,
                "dtype": dtypes.get(node.input[0], 1),
                "fixable": not why,
                "why": why,
                "guarded": guarded,
            }
        )
    return rows


def _dims(v: Any) -> list[int | str | None] | None:
    t = v.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def _is_guard(producer: Any, gemm: Any) -> bool:
    return producer is not None and producer.op_type == "Concat" and producer.name == (gemm.name or "gemm") + SUFFIX


def _guard(model: onnx.ModelProto, row: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """Concat(A, zero row) before the Gemm, Slice(rows 0..-1) after; the Gemm keeps its output name."""
    import numpy as np
    from onnx import helper, numpy_helper

    node = row["node"]
    if not node.name:  # a name of its own, so that two unnamed nodes never share the added tensors
        node.name = node.output[0]
    base = node.name + SUFFIX
    dtype = helper.tensor_dtype_to_np_dtype(row["dtype"])
    zero = np.zeros((row["k"], 1) if row["trans_a"] else (1, row["k"]), dtype)
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(zero, base + "/zero_row"),
            numpy_helper.from_array(np.array([0], np.int64), base + "/start"),
            numpy_helper.from_array(np.array([-1], np.int64), base + "/end"),
        ]
    )
    padded, wide, result = base + "/a", base + "/y", node.output[0]
    concat = helper.make_node(
        "Concat", [node.input[0], base + "/zero_row"], [padded], name=base, axis=1 if row["trans_a"] else 0
    )
    node.input[0] = padded
    node.output[0] = wide
    slice_ = helper.make_node(
        "Slice", [wide, base + "/start", base + "/end", base + "/start"], [result], name=base + "/slice"
    )
    return [concat], [slice_]
