"""torchvision detection models (Faster R-CNN and the other `torchvision.models.detection` builders).

The ONNX graph takes one RGB 0..1 image (1, 3, H, W) and normalises and resizes inside, so the
recipe's preprocess must be scale 1/255, mean 0, std 1, rgb, nchw (checked: 0..255 cannot be fed).
It is traced with the TorchScript exporter on the recipe's first real sample image, never on
random noise, whose data-dependent sizes would be baked into the graph.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from recipekit.core.errors import RecipeError, RecipeKitError
from recipekit.sources.base import ExportInfo, Forward, Source, WeightsConfig

if TYPE_CHECKING:
    from recipekit.recipe.schema import Recipe

STATE_FILE = "torchvision.json"


class TorchvisionConfig(WeightsConfig):
    """A torchvision detection builder, its weights (or synthetic ones) and its detection settings."""

    kind: Literal["torchvision"] = Field("torchvision", description="source kind")
    builder: str = Field("fasterrcnn_mobilenet_v3_large_fpn", description="torchvision.models.detection builder name")
    weights: str | None = Field(
        None,
        description="weights file (path relative to the recipe) or torchvision weights name (DEFAULT, COCO_V1, "
        "Enum.COCO_V1); never downloaded",
    )
    init: Literal["weights", "synthetic"] = Field(
        "weights",
        description="weights: load `weights`; synthetic: seeded architecture weights, BatchNorm and heads calibrated "
        "on shipped sample images (offline demos, tests)",
    )
    seed: int = Field(0, description="seed of synthetic weights")
    num_classes: int | None = Field(
        None, ge=2, description="classes including background; default: the weights' own, else 91 (COCO)"
    )
    box_score_thresh: float | None = Field(
        None,
        ge=0,
        le=1,
        description="minimum detection score (one-stage builders: score_thresh); default: the builder's",
    )
    box_nms_thresh: float | None = Field(
        None, gt=0, le=1, description="per-class NMS IoU (one-stage: nms_thresh); default: the builder's (0.5)"
    )
    box_detections_per_img: int | None = Field(
        None, ge=1, description="maximum detections per image (one-stage: detections_per_img); default: the builder's"
    )
    rpn_score_thresh: float | None = Field(
        None, ge=0, le=1, description="minimum RPN objectness of a proposal; default: the builder's"
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="other keyword arguments for the builder (e.g. score_thresh for RetinaNet)"
    )

    @model_validator(mode="after")
    def _weights_or_synthetic(self) -> TorchvisionConfig:
        if self.init == "weights" and not self.weights:
            raise ValueError(
                "init: weights needs `weights` (a file or torchvision weights name); or set init: synthetic for "
                "architecture-only weights"
            )
        if self.init == "synthetic" and self.weights:
            raise ValueError("`weights` and init: synthetic exclude each other; drop one")
        return self

    def model_kwargs(self) -> dict[str, Any]:
        from recipekit.sources.torchvision.families import model_kwargs

        return model_kwargs(self)


class TorchvisionSource(Source):
    """Exports a torchvision detector to ONNX and runs it eagerly as the gates' reference."""

    imports: ClassVar[tuple[str, ...]] = ("torch", "torchvision", "onnx", "cv2")  # gates import onnxruntime

    name: ClassVar[str] = "torchvision"
    version: ClassVar[str] = "4"
    Config = TorchvisionConfig
    checkpoint_family: ClassVar[str] = "state"

    def __init__(self, config: TorchvisionConfig | None = None) -> None:
        super().__init__(config)
        self.init = self.config.init

    def weight_files(self, base: Path) -> list[Path]:
        """The weights file (torchvision names resolve to torch.hub's cache); missing: a clear error."""
        from recipekit.sources.torchvision.build import resolve_weights

        if self.config.init == "synthetic":
            return []
        return [resolve_weights(self.config.builder, self.config.weights, base)[0]]

    def check_recipe(self, recipe: Recipe) -> None:
        from recipekit.sources.torchvision import export as tx

        tx.check_recipe(recipe)
        self.config.model_kwargs()  # builder known, settings named as its family names them
        super().check_recipe(recipe)

    def export(self, recipe: Recipe, out: Path, patches: list[AbstractContextManager]) -> ExportInfo:
        from recipekit.sources.torchvision import export as tx

        tx.check_recipe(recipe)
        name = recipe.input.name or tx.DEFAULT_INPUT
        with ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            model, notes = self._build(recipe)
            spec, x = tx.sample_input(recipe)
            found = len(tx.run_torch(model, x)[0])
            if not found:
                raise RecipeError(
                    "recipe",
                    "input.samples[0]",
                    f"{spec} gives no detections: tracing it would drop the detection branch; export with an image "
                    "the model finds objects in",
                )
            tx.export_onnx(model, x, out / "model.onnx", recipe, name)
        outputs = tx.outputs_of(model)
        from recipekit.sources.torchvision.families import cap_of

        cap = cap_of(model)
        digest = tx.state_digest(model)
        (out / STATE_FILE).write_text(json.dumps({"state_sha256": digest}))
        notes.update(
            builder=self.config.builder,
            init=self.config.init,
            export_sample=spec,
            export_detections=found,
            exporter="torch.onnx.export(dynamo=False)",
            state_sha256=digest,
            input=f"{name}: (1, 3, H, W) float32 RGB 0..1; ImageNet normalisation and resize inside the graph",
        )
        return ExportInfo(
            inputs=[name],
            outputs=outputs,
            output_kinds=tx.output_kinds(outputs, self.config.box_score_thresh, cap),
            notes=notes,
        )

    @contextmanager
    def _reference(self, recipe: Recipe, export_dir: Path, patches: list[AbstractContextManager]) -> Iterator[Forward]:
        from recipekit.sources.torchvision import export as tx

        with ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            model, _ = self._build(recipe)
            state = export_dir / STATE_FILE
            if state.is_file() and json.loads(state.read_text())["state_sha256"] != tx.state_digest(model):
                raise RecipeKitError(
                    f"the rebuilt {self.config.builder} differs from the exported one ({state}): synthetic weights "
                    "not deterministic here?"
                )
            yield lambda x: tx.run_torch(model, x)

    def reference(
        self, recipe: Recipe, export_dir: Path, patches: list[AbstractContextManager]
    ) -> AbstractContextManager[Forward]:
        return self._reference(recipe, export_dir, patches)

    def _build(self, recipe: Recipe) -> tuple[Any, dict[str, Any]]:
        from recipekit.sources.torchvision.build import build

        return build(self.config, recipe)
