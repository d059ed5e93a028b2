"""constant-folding: evaluate every subgraph whose inputs are all constants, once, at build time.

Why: exporters leave Identity-of-weight nodes, shape arithmetic on static tensors and Constant
chains that every runtime would otherwise execute (or, like TensorRT, reject when they feed shape
inputs). Uses onnxslim's folding only (onnx-graphsurgeon evaluating with ONNX Runtime), with its
shape inference so Shape nodes of static tensors fold too; no fusions, nothing else rewritten.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from recipekit.core.plugin import Strict
from recipekit.fixes.base import Check, FixContext, Guarantee, OnnxFix

if TYPE_CHECKING:
    import onnx


class ConstantFoldingConfig(Strict):
    """Options of constant-folding."""

    size_threshold: int | None = Field(
        None,
        ge=0,
        description="bytes: constants larger than this are not folded (keeps e.g. big ConstantOfShape outputs lazy); "
        "none: fold all",
    )


def leftovers(model: onnx.ModelProto, size_threshold: int | None = None) -> list[str]:
    """Nodes folding should have removed: all-constant inputs, or a Shape of a fully static tensor."""
    from recipekit.onnx.util import foldable_nodes, infer, shape_map

    out = foldable_nodes(model)
    if size_threshold is not None:  # what exceeds the threshold legitimately stays; judged by its inputs' size
        sizes = {i.name: len(i.raw_data) for i in model.graph.initializer}
        nodes = {n.name or n.output[0]: n for n in model.graph.node}
        out = [k for k in out if sum(sizes.get(i, 0) for i in nodes[k].input) <= size_threshold]
    shapes = shape_map(infer(model))
    for node in model.graph.node:
        d = shapes.get(node.input[0]) if node.op_type == "Shape" else None
        if d is not None and all(isinstance(x, int) and x > 0 for x in d):
            out.append(node.name or node.output[0])
    return out


class ConstantFolding(OnnxFix):
    """Fold constant subgraphs into initializers."""

    name: ClassVar[str] = "constant-folding"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = "no node computes from constants alone"
    Config = ConstantFoldingConfig

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        left = leftovers(model, self.config.size_threshold)
        if not left:
            return Check("not-needed", "no node has only constant inputs and no Shape reads a static tensor")
        return Check("applies", f"{len(left)} nodes compute from constants alone (e.g. {', '.join(left[:3])})")

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        from recipekit.fixes._slim import slim

        return slim(model, only=("constant_folding",), size_threshold=self.config.size_threshold)

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        left = leftovers(model, self.config.size_threshold)
        if left:
            return Guarantee(False, f"{len(left)} nodes still compute from constants alone: {', '.join(left[:5])}")
        return Guarantee(True, f"none of {len(model.graph.node)} nodes computes from constants alone")
