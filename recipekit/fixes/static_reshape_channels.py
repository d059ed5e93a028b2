"""static-reshape-channels: constant Reshape targets, so every Conv input has a known channel count.

Field notes case 3: with a dynamic batch axis, the tracer computes Reshape targets from runtime
shapes (Shape -> Gather -> Concat), so plain shape inference cannot see the channel entry and
YOLOv10's attention `pe` Conv gets all-unknown input dims; TensorRT then rejects the grouped conv.
This fix asks ONNX Runtime's symbolic shape inference for each such Reshape's output, and where at
most one entry is not a number (the batch) replaces the computed target by a constant, with -1 in
that slot. The Shape/Gather/Concat chains left unused are removed (onnx-ir).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from recipekit.core.plugin import Strict
from recipekit.fixes.base import Check, FixContext, Guarantee, OnnxFix

if TYPE_CHECKING:
    import onnx


class StaticReshapeChannelsConfig(Strict):
    """static-reshape-channels has no options: what it folds follows from the graph's declared input."""


def foldable_reshapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Reshape node name -> constant target, for Reshapes with a computed target and <= 1 unknown entry."""
    from recipekit.onnx.util import constant_names, infer_symbolic, shape_map

    shapes = shape_map(infer_symbolic(model))
    const = constant_names(model)
    out = {}
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[1] in const:
            continue
        dims = shapes.get(node.output[0])
        if not dims:
            continue
        unknown = [i for i, d in enumerate(dims) if not (isinstance(d, int) and d > 0)]
        if len(unknown) <= 1:
            out[node.name or node.output[0]] = [d if i not in unknown else -1 for i, d in enumerate(dims)]
    return out


def fold(model: onnx.ModelProto, targets: dict[str, list[int]]) -> onnx.ModelProto:
    """A copy with each named Reshape reading a constant target; dead nodes removed; shapes re-inferred."""
    import numpy as np
    import onnx
    import onnx_ir as ir
    from onnx_ir.passes.common import RemoveUnusedNodesPass

    from recipekit.onnx.util import infer

    out = onnx.ModelProto()
    out.CopyFrom(model)
    taken = {i.name for i in out.graph.initializer} | {o for n in out.graph.node for o in n.output}
    for node in out.graph.node:
        key = node.name or node.output[0]
        if node.op_type == "Reshape" and key in targets:
            name = f"{key}/static_shape"
            while name in taken:
                name += "_"
            taken.add(name)
            out.graph.initializer.append(onnx.numpy_helper.from_array(np.asarray(targets[key], np.int64), name))
            node.input[1] = name
    model_ir = ir.from_proto(out)
    RemoveUnusedNodesPass()(model_ir)
    return infer(ir.to_proto(model_ir))


class StaticReshapeChannels(OnnxFix):
    """Fold the non-batch entries of runtime-computed Reshape targets into constants."""

    name: ClassVar[str] = "static-reshape-channels"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = "Reshape targets computed from runtime shapes become constants (-1 for the batch)"
    Config = StaticReshapeChannelsConfig

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        from recipekit.onnx.util import dims, image_input, unknown_conv_channels

        unknown = unknown_conv_channels(model)
        if not unknown:
            return Check("not-needed", "every Conv input has a known channel count after onnx shape inference")
        declared = dims(image_input(model, ctx.recipe)) or []
        if not ctx.recipe.export.dynamic.hw and any(not isinstance(d, int) for d in declared[1:]):
            return Check(
                "cannot-apply",
                f"graph input dims {declared} leave non-batch axes dynamic while the recipe "
                "declares them static: put static-dims before this fix",
            )
        targets = foldable_reshapes(model)
        left = unknown_conv_channels(fold(model, targets)) if targets else unknown
        if left:
            return Check(
                "cannot-apply",
                f"{len(unknown)} Conv inputs have unknown channels; folding the "
                f"{len(targets)} Reshape targets with at most one symbolic entry leaves {len(left)} "
                f"(e.g. {left[0][0]}); graph input dims {declared}",
            )
        return Check(
            "applies",
            f"{len(unknown)} Conv inputs have unknown channels (e.g. {unknown[0][0]}); "
            f"folding {len(targets)} Reshape targets makes them all known",
        )

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        return fold(model, foldable_reshapes(model))

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        from recipekit.onnx.util import unknown_conv_channels

        unknown = unknown_conv_channels(model)
        n_conv = sum(n.op_type in ("Conv", "ConvTranspose") for n in model.graph.node)
        if unknown:
            return Guarantee(
                False,
                f"{len(unknown)} of {n_conv} Conv inputs still have unknown channels: "
                + ", ".join(f"{name} {d}" for name, d in unknown[:5]),
            )
        return Guarantee(True, f"all {n_conv} Conv inputs have a known channel count after onnx shape inference")
