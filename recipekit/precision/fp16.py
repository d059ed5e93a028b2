"""fp16: float16 weights and compute, float32 graph inputs and outputs kept.

Why ONNX Runtime's converter (onnxruntime.transformers.float16, the onnxconverter-common
algorithm): it keeps ops that are unsafe in fp16 (NonMaxSuppression, TopK, Range, Resize's old
Upsample, ...) in float32, and callers keep feeding and reading float32, so the golden cases, the
browser page and the Jetson check stay the same. The guarantee is checked after the conversion.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

FLOAT, FLOAT16 = 1, 10  # onnx.TensorProto.FLOAT, FLOAT16


def _blocked() -> set[str]:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

    return set(DEFAULT_OP_BLOCK_LIST)


FLOAT_ONLY_INPUTS = {"Resize": {1, 2}, "Upsample": {1}}
"""Inputs the ONNX spec types float32 whatever the data (Resize's roi and scales)."""


def fp32_weights(model: onnx.ModelProto) -> list[str]:
    """float32 initializers read as data by at least one node that is not kept in float32."""
    blocked = _blocked()
    fp32 = {i.name for i in model.graph.initializer if i.data_type == FLOAT}
    return sorted(
        {
            name
            for n in model.graph.node
            if n.op_type not in blocked
            for k, name in enumerate(n.input)
            if name in fp32 and k not in FLOAT_ONLY_INPUTS.get(n.op_type, set())
        }
    )


def not_float32_io(model: onnx.ModelProto) -> list[str]:
    """Graph inputs and outputs of a float type that are not float32."""
    g = model.graph
    return [v.name for v in [*g.input, *g.output] if v.type.tensor_type.elem_type == FLOAT16]


def convert(src: Path, dst: Path) -> dict[str, Any]:
    """Write the fp16 model; raises ValueError when the conversion left what it must not."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from recipekit.onnx.util import without_value_info

    model = _sorted(convert_float_to_float16(without_value_info(onnx.load(str(src))), keep_io_types=True))
    left, io = fp32_weights(model), not_float32_io(model)
    if left or io:
        raise ValueError(f"fp16 conversion left float32 weights {left[:5]} / float16 graph I/O {io[:5]}")
    onnx.save(model, str(dst))
    n16 = sum(i.data_type == FLOAT16 for i in model.graph.initializer)
    return {"float16_weights": n16, "io": "float32", "kept_float32_ops": sorted(_blocked() & _ops(model))}


def _sorted(model: onnx.ModelProto) -> onnx.ModelProto:
    """The converter appends its input Casts after their consumers: sort the graph (onnx-ir) so the
    checker and every runtime accept it."""
    import onnx_ir as ir

    m = ir.from_proto(model)
    m.graph.sort()
    return ir.to_proto(m)


def _ops(model: onnx.ModelProto) -> set[str]:
    return {n.op_type for n in model.graph.node}
