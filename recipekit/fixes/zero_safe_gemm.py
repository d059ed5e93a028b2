"""zero-safe-gemm: give a Gemm whose row count depends on the data one zero sentinel row, sliced off after.

A Gemm after NonMaxSuppression / NonZero / TopK (torchvision's RoI box head: fc6, fc7 and the
predictor) gets zero rows when an image yields no proposals. ONNX Runtime's CPU kernel returns an
empty result, but onnxruntime-web's JSEP Gemm rejects M = 0 ("invalid shape specified", measured
with 1.30.0 and 1.31.1; the native WebGPU EP returns the empty result), and rewriting Gemm as
MatMul + Add does not help: ORT's MatMulAddFusion turns it back into a Gemm. This fix appends
one zero row to A (a Concat, which JSEP handles with an empty input), runs the Gemm on M + 1
rows and slices the last row off the result, so every value is computed as before and the empty
case yields an empty result.

Which Gemms: those whose row dim (A's dim 0, or 1 with transA) is neither static nor a dim of a
graph input (a batch); ONNX shape inference with data propagation names the dims. A Gemm whose C
has one row per row of A, or whose inner dim is not static, is left (reported).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from recipekit.fixes.sentinel import SentinelRowFix

if TYPE_CHECKING:
    import onnx


class ZeroSafeGemm(SentinelRowFix):
    """Sentinel row for Gemms whose row count comes from the data (empty-safe on JSEP WebGPU)."""

    name: ClassVar[str] = "zero-safe-gemm"
    version: ClassVar[str] = "3"
    summary: ClassVar[str] = "one zero sentinel row for Gemms with a data-dependent row count (JSEP rejects M=0)"
    bundles: ClassVar[tuple[str, ...] | None] = ("jsep",)  # the native EP runs M = 0 (measured, 1.31.1)
    op: ClassVar[str] = "Gemm"
    input_index: ClassVar[int] = 0
    suffix: ClassVar[str] = "/zero_safe_gemm"
    risk: ClassVar[str] = "with a data-dependent row count"
    risk_has: ClassVar[str] = "has a data-dependent row count"
    done: ClassVar[str] = "run on a sentinel row"

    def analyse(self, model: onnx.ModelProto) -> list[dict[str, Any]]:
        """Per Gemm with a data-dependent row count: is it fixable, is it already guarded, its sentinel row."""
        import numpy as np
        from onnx import helper

        g = model.graph
        dims, dtypes, batch, producers = self.shapes(model)
        rows = []
        for node in g.node:
            if node.op_type != "Gemm":
                continue
            trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
            a_dims = dims.get(node.input[0])
            if a_dims is None or len(a_dims) != 2:
                continue
            m, k = (a_dims[1], a_dims[0]) if trans_a else (a_dims[0], a_dims[1])
            guarded = self.is_guard(producers.get(node.input[0]), node)
            if not guarded and (isinstance(m, int) or m in batch):
                continue
            c_dims = dims.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            per_row = c_dims is not None and len(c_dims) == 2 and c_dims[0] != 1
            why = "inner dim not static" if not isinstance(k, int) else ("C has a row per row of A" if per_row else "")
            row = {"node": node, "name": node.name or node.output[0], "fixable": not why, "why": why}
            if not why:
                dtype = helper.tensor_dtype_to_np_dtype(dtypes.get(node.input[0], 1))
                row.update(zero=np.zeros((k, 1) if trans_a else (1, k), dtype), axis=1 if trans_a else 0)
            rows.append({**row, "guarded": guarded})
        return rows
