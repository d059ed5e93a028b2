"""static-dims: fix every non-batch dim of the image input to the recipe's declared shape.

Exporters make all axes dynamic at once (Ultralytics' `dynamic=True` frees batch, height and width),
while a recipe usually wants only the batch dynamic. Declaring H/W (and channels) static lets shape
inference, TensorRT and WebGPU see fixed sizes everywhere. The batch stays symbolic iff the recipe's
batch is dynamic; H/W stay symbolic iff `export.dynamic.hw`. Output dims that become known are
written into the graph outputs too; stored intermediate shapes are dropped (they would be stale).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from recipekit.core.plugin import Strict
from recipekit.fixes.base import Check, FixContext, Guarantee, OnnxFix
from recipekit.onnx.util import Dim

if TYPE_CHECKING:
    import onnx


class StaticDimsConfig(Strict):
    """Options of static-dims."""

    batch_name: str = Field(
        "batch", description="name of the symbolic batch dim when the batch is dynamic and the graph has none"
    )
    channels: int = Field(3, ge=1, description="channel count when the graph leaves it dynamic (3 for RGB/BGR images)")


def _want(have: Dim, fixed: bool, value: int | str) -> tuple[Dim, str]:
    """The dim to declare for one axis, and why it cannot be declared ("" when it can)."""
    static = isinstance(have, int) and have > 0
    if not fixed:  # the axis stays dynamic
        why = f"is static {have} in the graph but dynamic in the recipe: re-export it dynamic" if static else ""
        return have or value, why
    return value, f"is {have} in the graph but {value} in the recipe" if static and have != value else ""


class StaticDims(OnnxFix):
    """Declare the recipe's static input dims in the graph; keep the declared dynamic axes symbolic."""

    name: ClassVar[str] = "static-dims"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = "every non-batch input dim fixed to the declared shape; batch dynamic only if declared"
    Config = StaticDimsConfig

    def target(self, model: onnx.ModelProto, ctx: FixContext) -> tuple[list[Dim], list[str]]:
        """The image input's declared dims and the contradictions with the graph (axis: why)."""
        from recipekit.onnx.util import dims, image_input

        ex, value = ctx.recipe.export, image_input(model, ctx.recipe)
        have = dims(value)
        if have is None or len(have) != 4:
            return [], [f"input {value.name!r} has dims {have}: expected rank 4"]
        (h, w), hw_fixed = ex.imgsz, not ex.dynamic.hw
        c_axis = 1 if ctx.recipe.input.preprocess.layout == "nchw" else 3
        c = have[c_axis] if isinstance(have[c_axis], int) and have[c_axis] > 0 else self.config.channels
        spec = {
            0: ("batch", not ex.dynamic_batch, self.config.batch_name if ex.dynamic_batch else ex.batch.max),
            c_axis: ("channels", True, c),
        }
        rest = [i for i in range(4) if i not in spec]
        spec[rest[0]] = ("height", hw_fixed, h if hw_fixed else "height")
        spec[rest[1]] = ("width", hw_fixed, w if hw_fixed else "width")
        out, errors = [], []
        for axis in range(4):
            label, fixed, wanted = spec[axis]
            dim, why = _want(have[axis], fixed, wanted)
            out.append(dim)
            errors += [f"{value.name} {label} {why}"] if why else []
        return out, errors

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        from recipekit.onnx.util import dims, image_input

        want, errors = self.target(model, ctx)
        if errors:
            return Check("cannot-apply", "; ".join(errors))
        have = dims(image_input(model, ctx.recipe))
        resolvable = _resolved_outputs(_with_input_dims(model, ctx, want))
        if have == want and not resolvable:
            return Check("not-needed", f"input dims already {want}; no output dim left to resolve")
        return Check("applies", f"input dims {have} -> {want}; {len(resolvable)} output dims become static")

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        want, _ = self.target(model, ctx)
        out = _with_input_dims(model, ctx, want)
        for (name, axis), value in _resolved_outputs(out).items():
            dim = next(o for o in out.graph.output if o.name == name).type.tensor_type.shape.dim[axis]
            dim.Clear()
            dim.dim_value = value
        return out

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        from recipekit.onnx.util import dims, image_input

        want, errors = self.target(model, ctx)
        have = dims(image_input(model, ctx.recipe))
        if errors or have != want:
            why = f" ({'; '.join(errors)})" if errors else ""
            return Guarantee(False, f"input dims {have}, declared {want}{why}")
        left = _resolved_outputs(model)
        note = f"; {len(left)} output dims could still be static" if left else ""
        return Guarantee(not left, f"input dims {have} as declared{note}")


def _with_input_dims(model: onnx.ModelProto, ctx: FixContext, want: list[Dim]) -> onnx.ModelProto:
    """A copy with the image input's dims set to `want` and stored intermediate shapes dropped."""
    from recipekit.onnx.util import image_input, without_value_info

    out = without_value_info(model)
    name = image_input(model, ctx.recipe).name
    value = next(i for i in out.graph.input if i.name == name)
    for dim, w in zip(value.type.tensor_type.shape.dim, want, strict=True):
        dim.Clear()
        if isinstance(w, int):
            dim.dim_value = w
        elif w:
            dim.dim_param = w
    return out


def _resolved_outputs(model: onnx.ModelProto) -> dict[tuple[str, int], int]:
    """(output, axis) -> value for output dims declared unknown that shape inference knows."""
    from recipekit.onnx.util import dims, infer, shape_map

    inferred = shape_map(infer(model, data_prop=True))
    out = {}
    for value in model.graph.output:
        declared, known = dims(value), inferred.get(value.name)
        if declared is None or known is None or len(known) != len(declared):
            continue
        for axis, (d, k) in enumerate(zip(declared, known, strict=True)):
            if not (isinstance(d, int) and d > 0) and isinstance(k, int) and k > 0:
                out[(value.name, axis)] = k
    return out
