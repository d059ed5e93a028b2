"""opset: convert the graph to a target ONNX opset with onnx's version converter.

Why: each runtime supports a range of opsets (an older TensorRT, a browser's ORT-web bundle), and
an exporter picks its own. Converting after export keeps one export for all targets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from recipekit.core.plugin import Strict
from recipekit.fixes.base import Check, FixContext, Guarantee, OnnxFix

if TYPE_CHECKING:
    import onnx


class OpsetConfig(Strict):
    """Options of opset."""

    target: int = Field(ge=7, le=30, description="ONNX opset (default domain) the graph is converted to")


def default_opset(model: onnx.ModelProto) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


class Opset(OnnxFix):
    """Convert the default-domain opset to `target` (up or down) with onnx.version_converter."""

    name: ClassVar[str] = "opset"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = "the graph uses the target ONNX opset"
    Config = OpsetConfig

    def _convert(self, model: onnx.ModelProto) -> onnx.ModelProto:
        import onnx

        out = onnx.version_converter.convert_version(model, self.config.target)
        onnx.checker.check_model(out)
        return out

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        import onnx

        have, target = default_opset(model), self.config.target
        if have == target:
            return Check("not-needed", f"the graph already uses opset {target}")
        newest = onnx.defs.onnx_opset_version()
        if target > newest:
            return Check("cannot-apply", f"opset {target} is newer than onnx {onnx.__version__} knows (up to {newest})")
        try:
            self._convert(model)
        except Exception as exc:  # the converter raises RuntimeError / ConvertError with the failing op
            first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            return Check("cannot-apply", f"onnx's version converter cannot go from opset {have} to {target}: {first}")
        return Check("applies", f"opset {have} -> {target}")

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        return self._convert(model)

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        import onnx

        have = default_opset(model)
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            return Guarantee(False, f"opset {have}, but onnx's checker fails: {str(exc).splitlines()[0][:300]}")
        return Guarantee(have == self.config.target, f"opset {have} (target {self.config.target}); onnx checker passes")
