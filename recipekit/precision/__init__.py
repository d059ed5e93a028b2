"""Precision: one ONNX step shared by every target (fp32 as is, fp16 conversion, INT8 QDQ quantization).

It sits between the fix chain and the targets, so ORT, WebGPU and TensorRT all compile the same
precision-converted ONNX: TensorRT takes its precision from the graph (strongly typed), never from
builder flags.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

PRECISIONS = ("fp32", "fp16", "int8")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def graph_precision(model: onnx.ModelProto) -> str:
    """What an ONNX graph carries: int8 (QDQ nodes), fp16 (float16 weights) or fp32."""
    if any(n.op_type in QDQ_OPS for n in model.graph.node):
        return "int8"
    if any(i.data_type == 10 for i in model.graph.initializer):  # onnx.TensorProto.FLOAT16
        return "fp16"
    return "fp32"
