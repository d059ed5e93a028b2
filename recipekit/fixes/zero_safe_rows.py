"""zero-safe-rows: give a Softmax or row-wise ReduceMax/ReduceMin whose rows come from the data one zero
sentinel row, sliced off after.

torchvision's R-CNN box heads take a Softmax over the class logits of every RoI: (N, classes) with N = 0
when an image yields no proposals (a blank image); their mask and keypoint heads run Convs and a
ConvTranspose over (N, 256, 14, 14) RoI features. ONNX Runtime's CPU kernel returns an empty result, and
so does JSEP, but onnxruntime-web's native WebGPU EP fails: Softmax, Conv, ConvTranspose, MaxPool,
AveragePool, GlobalAveragePool and InstanceNormalization with "Invalid dispatch group size (.., .., 0)",
ReduceMax and ReduceMin with "Input tensor cannot be null or empty" (measured with 1.31.1, one kernel at
a time on a data-dependent empty batch; LogSoftmax, ReduceSum, ReduceMean, BatchNormalization, Resize,
MatMul, Concat, Slice, Split and the element-wise ops take it). Every row (batch item) of these ops is
computed from that row alone, so an appended zero row changes no other row; it is sliced off the
result, and the empty case yields an empty result.

Which nodes: those whose row dim (dim 0) is neither static nor a dim of a graph input (a batch), whose
other dims are static, and whose softmax axis or reduced axes leave dim 0 alone (with it kept first in
the output). A global reduction (every axis) of a possibly empty tensor has no value-preserving
sentinel: it is reported and left, as is a MaxPool that also outputs its indices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from recipekit.fixes.sentinel import SentinelRowFix

if TYPE_CHECKING:
    import onnx

PER_ROW = ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "InstanceNormalization")
"""Ops that compute each batch item from that item alone, whatever their attributes."""
OPS = ("Softmax", "ReduceMax", "ReduceMin", *PER_ROW)


class ZeroSafeRows(SentinelRowFix):
    """Sentinel row for Softmax, row-wise ReduceMax/ReduceMin and the per-item Conv/pool/norm ops with a
    data-dependent row count (native EP)."""

    name: ClassVar[str] = "zero-safe-rows"
    version: ClassVar[str] = "2"
    summary: ClassVar[str] = (
        "one zero sentinel row for Softmax, row-wise reductions, Conv, pools and norms on data-dependent rows"
    )
    bundles: ClassVar[tuple[str, ...] | None] = ("webgpu", "jspi")  # JSEP takes them empty (measured, 1.31.1)
    op: ClassVar[str] = "Softmax/ReduceMax/ReduceMin/Conv/ConvTranspose/pool/InstanceNormalization"
    input_index: ClassVar[int] = 0
    suffix: ClassVar[str] = "/zero_safe_rows"
    risk: ClassVar[str] = "with a data-dependent row count"
    risk_has: ClassVar[str] = "has a data-dependent row count"
    done: ClassVar[str] = "run on a sentinel row"

    def analyse(self, model: onnx.ModelProto) -> list[dict[str, Any]]:
        import numpy as np
        from onnx import helper

        g = model.graph
        dims, dtypes, batch, producers = self.shapes(model)
        consts = {t.name: t for t in g.initializer}
        rows = []
        for node in g.node:
            shape = dims.get(node.input[0]) if node.op_type in OPS else None
            if not shape:
                continue
            guarded = self.is_guard(producers.get(node.input[0]), node)
            if not guarded and (isinstance(shape[0], int) or shape[0] in batch):
                continue
            why = _why_not(node, shape, consts)
            row = {"node": node, "name": node.name or node.output[0], "fixable": not why, "why": why}
            if not why:
                dtype = helper.tensor_dtype_to_np_dtype(dtypes.get(node.input[0], 1))
                row.update(zero=np.zeros((1, *shape[1:]), dtype), axis=0)
            rows.append({**row, "guarded": guarded})
        return rows


def _why_not(node: onnx.NodeProto, shape: list[Any], consts: dict[str, Any]) -> str:
    """Why a sentinel row cannot be added ("" when it can)."""
    from onnx import numpy_helper

    if not all(isinstance(d, int) for d in shape[1:]):
        return "dims after the rows not static"
    if node.op_type in PER_ROW:
        return "its indices output has no sentinel row" if len([o for o in node.output if o]) > 1 else ""
    attrs = {a.name: a for a in node.attribute}
    rank = len(shape)
    if node.op_type == "Softmax":
        axis = attrs["axis"].i if "axis" in attrs else -1
        return "" if axis % rank != 0 else "softmax over the rows"
    if len(node.input) > 1 and node.input[1]:  # opset 18: axes as an input
        if node.input[1] not in consts:
            return "axes not constant"
        axes = [int(a) for a in numpy_helper.to_array(consts[node.input[1]]).ravel()]
    else:
        axes = list(attrs["axes"].ints) if "axes" in attrs else []
    if not axes or any(a % rank == 0 for a in axes):
        return "reduces over the rows (a global reduction has no value-preserving sentinel)"
    return ""
