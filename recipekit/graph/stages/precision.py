"""The precision step: the fixed ONNX -> fp16 or INT8 QDQ ONNX, shared by every target.

Its key: the fix chain's key, the input and export sections (precision, quantization options, the
size and preprocessing calibration tensors are made with), every calibration image by content
(INT8), and the versions of the tools that shape the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core import tools
from recipekit.core.errors import StepFailed
from recipekit.graph.stages.common import KeyParts

if TYPE_CHECKING:
    from recipekit.graph.context import Output, StepContext
    from recipekit.graph.plan import Step
    from recipekit.recipe.schema import Recipe

TOOLS = ("onnx", "onnxruntime", "onnx-ir", "numpy", "opencv-python")
VERSION = "4"


def key_parts(step: Step, recipe: Recipe) -> KeyParts:
    from recipekit.precision.calibration import calibration_images

    images = calibration_images(recipe) if recipe.export.precision == "int8" else []
    files = {f"calibration/{i:04d}-{p.name}": p for i, p in enumerate(images)}
    return KeyParts(VERSION, tools.versions(TOOLS), files)


def _convert(recipe: Recipe, precision: str, src: Path, dst: Path, images: list[Path]) -> dict[str, Any]:
    if precision == "fp16":
        from recipekit.precision.fp16 import convert

        return convert(src, dst)
    from recipekit.precision.calibration import calibration_tensors
    from recipekit.precision.int8 import quantize

    return quantize(src, dst, calibration_tensors(recipe, images), recipe.export.quantization)


def run(ctx: StepContext) -> Output:
    from recipekit.graph.results import PrecisionResult

    precision = ctx.recipe.export.precision
    names = sorted(n for n in ctx.files if n.startswith("calibration/"))

    def build(work: Path) -> PrecisionResult:
        src, images = ctx.up("fix").file("model.onnx"), [ctx.files[n].path for n in names]
        try:
            summary = _convert(ctx.recipe, precision, src, work / "model.onnx", images)
        except ValueError as exc:
            raise StepFailed(ctx.task, f"{precision} conversion failed: {exc}") from None
        return PrecisionResult(precision=precision, summary=summary, calibration_images=names)

    return ctx.cached(build)
