"""zero-safe-gathernd: give a GatherND whose indices come from the data one sentinel index row, sliced off after.

GatherND after NonZero (torchvision RetinaNet's and FCOS's per-level candidate selection) gets zero
index rows when nothing scores above the threshold (a blank image). ONNX Runtime's CPU kernel
returns an empty result; onnxruntime-web's JSEP GatherND fails on empty int64 indices
("Unsupported data type: 7", measured with 1.30.0 and 1.31.1; field notes, case 1); the native WebGPU EP
returns the empty result. This fix appends one
all-zero index row (a valid index into any non-empty data), gathers N + 1 slices and slices the
last one off, so every value is as before and the empty case yields an empty result.

Which GatherNDs: those whose indices are downstream of NonZero / NonMaxSuppression / TopK-like
ops (webgpu's static analysis of possibly empty tensors), with batch_dims 0 and a static index
depth. Others are reported and left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from recipekit.fixes.sentinel import SentinelRowFix
from recipekit.onnx.util import EMPTY_SOURCES

if TYPE_CHECKING:
    import onnx

# ops through which "may have zero rows" passes from input to output (row-preserving)
ROW_PRESERVING = {"Transpose", "Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Slice", "Gather", "Concat"}


class ZeroSafeGatherNd(SentinelRowFix):
    """Sentinel index row for GatherNDs whose indices can be empty (JSEP rejects empty int64 indices)."""

    name: ClassVar[str] = "zero-safe-gathernd"
    version: ClassVar[str] = "3"
    summary: ClassVar[str] = "one zero sentinel index row for GatherNDs whose indices can be empty (JSEP)"
    bundles: ClassVar[tuple[str, ...] | None] = ("jsep",)  # the native EP takes empty indices (measured, 1.31.1)
    op: ClassVar[str] = "GatherND"
    input_index: ClassVar[int] = 1
    suffix: ClassVar[str] = "/zero_safe_gathernd"
    risk: ClassVar[str] = "with possibly empty indices"
    risk_has: ClassVar[str] = "has possibly empty indices"
    done: ClassVar[str] = "gather a sentinel row"

    def analyse(self, model: onnx.ModelProto) -> list[dict[str, Any]]:
        import numpy as np
        from onnx import shape_inference

        inferred = shape_inference.infer_shapes(model, data_prop=True).graph
        dims = {v.name: v.type.tensor_type.shape.dim for v in [*inferred.value_info, *inferred.input]}
        producers = {o: n for n in model.graph.node for o in n.output}
        empty = _maybe_empty(model)
        rows = []
        for node in model.graph.node:
            if node.op_type != "GatherND":
                continue
            guarded = self.is_guard(producers.get(node.input[1]), node)
            if not guarded and node.input[1] not in empty:
                continue
            batch = next((a.i for a in node.attribute if a.name == "batch_dims"), 0)
            idx = dims.get(node.input[1])
            depth = idx[-1].dim_value if idx is not None and len(idx) and idx[-1].HasField("dim_value") else None
            why = "batch_dims > 0" if batch else ("index depth not static" if depth is None else "")
            row = {"node": node, "name": node.name or node.output[0], "fixable": not why, "why": why}
            if not why:
                row.update(zero=np.zeros((1, depth), np.int64), axis=0)
            rows.append({**row, "guarded": guarded})
        return rows


def _maybe_empty(model: onnx.ModelProto) -> set[str]:
    empty: set[str] = set()
    for node in model.graph.node:
        if node.op_type in EMPTY_SOURCES or (node.op_type in ROW_PRESERVING and node.input and node.input[0] in empty):
            empty.update(node.output)
    return empty
