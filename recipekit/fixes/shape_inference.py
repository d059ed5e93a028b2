"""shape-inference: store every intermediate tensor's type and shape in the graph.

Why: exporters store few or no intermediate shapes, and later tools (TensorRT's parser, WebGPU's
kernels, our own lints) see more when they are stored. Stored shapes are recomputed from the graph
(stale ones dropped first), so a second run changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from recipekit.core.plugin import Strict
from recipekit.fixes.base import Check, FixContext, Guarantee, OnnxFix

if TYPE_CHECKING:
    import onnx


class ShapeInferenceConfig(Strict):
    """Options of shape-inference."""

    engine: Literal["onnx", "symbolic"] = Field(
        "onnx",
        description="onnx: onnx's own inference; symbolic: ONNX Runtime's sympy-based inference (dims as expressions "
        "of the input's symbolic dims)",
    )
    data_prop: bool = Field(
        True,
        description="onnx engine: propagate constant shape values (Shape -> Gather -> Reshape) so more dims are known",
    )
    strict: bool = Field(
        False, description="onnx engine: an op that fails inference is an error instead of an unknown shape"
    )


def _stored(model: onnx.ModelProto) -> dict[str, bytes]:
    return {v.name: v.SerializeToString() for v in model.graph.value_info}


class ShapeInference(OnnxFix):
    """Run shape inference and store the result as the graph's value_info."""

    name: ClassVar[str] = "shape-inference"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = "every intermediate tensor carries its inferred type and shape"
    Config = ShapeInferenceConfig

    def _infer(self, model: onnx.ModelProto) -> onnx.ModelProto:
        from recipekit.onnx.util import infer_symbolic, without_value_info

        if self.config.engine == "symbolic":
            return infer_symbolic(model)
        import onnx

        return onnx.shape_inference.infer_shapes(
            without_value_info(model), check_type=True, strict_mode=self.config.strict, data_prop=self.config.data_prop
        )

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        try:
            inferred = self._infer(model)
        except Exception as exc:  # onnx raises InferenceError / ValidationError, ORT's engine plain Exception
            return Check("cannot-apply", f"shape inference failed: {str(exc).splitlines()[0][:300]}")
        before, after = _stored(model), _stored(inferred)
        if before == after:
            return Check("not-needed", f"the {len(after)} stored intermediate shapes are already what inference gives")
        changed = sum(before.get(k) != v for k, v in after.items()) + len(before.keys() - after.keys())
        return Check("applies", f"{changed} stored intermediate shapes are missing or differ from inference")

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        return self._infer(model)

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        from recipekit.onnx.util import shape_map

        shapes = shape_map(model)
        outputs = [o for n in model.graph.node for o in n.output if o]
        missing = [o for o in outputs if shapes.get(o) is None]
        if missing:
            return Guarantee(
                False, f"{len(missing)} of {len(outputs)} node outputs have no stored rank: " + ", ".join(missing[:5])
            )
        return Guarantee(True, f"all {len(outputs)} node outputs have a stored type and rank")
