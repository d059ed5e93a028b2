"""Running onnxslim quietly on a copy: shared by the constant-folding and onnxslim fixes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

PASSES = ("constant_folding", "graph_fusion", "dead_node_elimination", "subexpression_elimination", "weight_tying")
"""onnxslim's optimisation passes (onnxslim.core.optimization.OptimizationSettings.keys())."""


def slim(model: onnx.ModelProto, only: tuple[str, ...] = PASSES, **kwargs: Any) -> onnx.ModelProto:
    """onnxslim.slim on a copy with only the passes in `only`; onnxslim iterates to a fixed point."""
    import logging

    import onnx
    import onnxslim

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    skip = [p for p in PASSES if p not in only] + list(kwargs.pop("skip_optimizations", None) or [])
    logger = logging.getLogger("onnxslim")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return onnxslim.slim(copy, skip_optimizations=skip or None, **kwargs)
    finally:
        logger.setLevel(level)


def same_graph(a: onnx.ModelProto, b: onnx.ModelProto) -> bool:
    """Same nodes (op, inputs, outputs, attributes) and the same initializers, ignoring stored shapes."""

    def key(m: onnx.ModelProto) -> tuple[list[bytes], list[bytes]]:
        return (
            [n.SerializeToString() for n in m.graph.node],
            sorted(i.SerializeToString() for i in m.graph.initializer),
        )

    return key(a) == key(b)
