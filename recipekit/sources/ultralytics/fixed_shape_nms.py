"""fixed-shape-nms: embedded NMS in which no tensor can be zero-sized (field notes, case 1).

A source fix: while the model is exported (and while the golden reference runs), ultralytics'
`NMSModel.forward` is replaced by `_nms_forward.fixed_shape_forward`, which adds an all-zero
sentinel candidate that every data-dependent op keeps, and gathers exactly `max_det` rows per image.
Output shape (B, max_det, C) and values are unchanged; rows past the detections stay zero.
The guarantee is measured, not assumed: ONNX Runtime runs the exported graph on a blank image with
every intermediate tensor as an output, and any zero-sized tensor fails it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, ClassVar

from pydantic import Field

from recipekit.core.plugin import Strict
from recipekit.fixes.base import Check, FixContext, Guarantee, SourceFix

if TYPE_CHECKING:
    import onnx


class FixedShapeNmsConfig(Strict):
    """Options of fixed-shape-nms."""

    blank_values: tuple[Annotated[int, Field(ge=0, le=255)], ...] = Field(
        (0, 114, 255),
        description="pixel values (0..255) of the blank images the guarantee runs; NMS keeps nothing on them",
    )


class FixedShapeNms(SourceFix):
    """Patch ultralytics' NMSModel so embedded NMS never produces a zero-sized tensor."""

    name: ClassVar[str] = "fixed-shape-nms"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = "embedded NMS writes a fixed (B, max_det, C) output; no tensor is ever zero-sized"
    Config = FixedShapeNmsConfig

    def check(self, ctx: FixContext) -> Check:
        if ctx.recipe.export.nms is None:
            return Check("not-needed", "export.nms is off: the graph has no embedded NMS")
        if getattr(ctx.recipe.source, "kind", None) != "ultralytics":
            kind = getattr(ctx.recipe.source, "kind", None)
            return Check("cannot-apply", f"patches ultralytics' NMSModel; source kind is {kind!r}")
        from recipekit.sources.ultralytics.env import prepare

        prepare()
        try:
            from ultralytics.engine.exporter import NMSModel
        except ImportError as exc:
            return Check("cannot-apply", f"ultralytics' NMSModel is not importable: {exc}")
        if not callable(getattr(NMSModel, "forward", None)):
            return Check("cannot-apply", "ultralytics.engine.exporter.NMSModel has no forward to replace")
        return Check("applies", "embedded NMS pads a dynamic tensor that is zero-sized when NMS keeps nothing")

    @contextmanager
    def patch(self, ctx: FixContext) -> Iterator[None]:
        """Replace NMSModel.forward for the duration; nesting is harmless (the wrapper is not re-wrapped)."""
        from ultralytics.engine.exporter import NMSModel

        from recipekit.sources.ultralytics.nms_forward import fixed_shape_forward

        saved = NMSModel.__dict__["forward"]
        original = getattr(saved, "_recipekit_original", saved)

        def forward(model_self, x):  # noqa: ANN001, ANN202 - torch module signature
            return fixed_shape_forward(model_self, x, original)

        forward._recipekit_original = original  # type: ignore[attr-defined]
        NMSModel.forward = forward
        try:
            yield
        finally:
            NMSModel.forward = saved

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        from collections import Counter

        from recipekit.onnx.util import blank_inputs, zero_sized_tensors

        found: list[str] = []
        for value in self.config.blank_values:
            zero = zero_sized_tensors(model, blank_inputs(model, ctx.recipe, value))
            if zero:
                ops = Counter(z.op for z in zero) + Counter(c for z in zero for c in z.consumers)
                found.append(
                    f"blank {value}: {len(zero)} zero-sized tensors, produced by or fed to "
                    f"{dict(sorted(ops.items()))}; e.g. {', '.join(z.name for z in zero[:3])}"
                )
        if found:
            return Guarantee(False, "; ".join(found))
        return Guarantee(
            True,
            f"no zero-sized tensor on blank images {list(self.config.blank_values)} "
            f"(every intermediate of {len(model.graph.node)} nodes checked with ONNX Runtime)",
        )
