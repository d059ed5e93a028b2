"""mmpose source: an MMPose model (RTMO) exported by MMDeploy's torch2onnx for ONNX Runtime.

The export goes through mmdeploy, as RTMO users deploy it, because mmdeploy's rewriters are what put
NMS and keypoint decoding into the graph (outputs `dets` and `keypoints`). The stack is the optional
extra `recipekit[mmpose]`, installed by scripts/install-mmpose.sh (see it for why --no-deps).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from recipekit.core.errors import RecipeError
from recipekit.sources.base import ExportInfo, Forward, Source, WeightsConfig
from recipekit.sources.mmpose.loading import mmengine_loading
from recipekit.sources.mmpose.mmdeploy_cfg import DEFAULT_CONFIG, NmsParams

if TYPE_CHECKING:
    from recipekit.recipe.schema import Recipe

SYNTH_HW = (640, 640)
"""Synthetic weights are calibrated at RTMO's training size, so they do not depend on export shape."""
SYNTHETIC_NOTE = (
    "synthetic: seeded architecture weights, BatchNorm statistics and output layers calibrated on "
    "sample images; NOT a trained model, its detections are meaningless"
)


class MmposeConfig(WeightsConfig):
    """An mmpose model config plus its weights: a checkpoint, or seeded synthetic weights."""

    kind: Literal["mmpose"] = Field(description="source kind")
    config: str = Field(
        DEFAULT_CONFIG, description="mmpose config, relative to the configs mmpose ships in its package"
    )
    weights: str | None = Field(
        None,
        description="checkpoint: a path relative to the recipe, or an mmpose model "
        "name (looked up in torch's hub cache, never downloaded)",
    )
    init: Literal["weights", "synthetic"] = Field(
        "weights",
        description="weights: load `weights`; synthetic: seeded "
        "architecture weights calibrated on sample images (not a trained model)",
    )
    seed: int = Field(0, description="seed of the synthetic weights")
    exporter: Literal["mmdeploy"] = Field("mmdeploy", description="mmdeploy's torch2onnx (onnxruntime backend)")

    @model_validator(mode="after")
    def _weights_named(self) -> MmposeConfig:
        if self.init == "weights" and not self.weights:
            raise ValueError(
                "init: weights needs `weights` (a checkpoint path or mmpose model name); or set init: synthetic"
            )
        return self


class MmposeSource(Source):
    """RTMO through MMDeploy; reference = the same checkpoint in mmpose's ordinary (non-deploy) mode."""

    imports: ClassVar[tuple[str, ...]] = ("torch", "torchvision", "mmpose", "onnx", "onnxruntime", "cv2")

    @classmethod
    def before_import(cls) -> None:
        from recipekit.sources.mmpose.mmcv_compat import install

        install()  # mmcv-lite's missing ops and no caches in the home folder: before `import mmpose`

    name: ClassVar[str] = "mmpose"
    version: ClassVar[str] = "2"
    Config = MmposeConfig
    config: MmposeConfig
    checkpoint_family: ClassVar[str] = "mmpose"

    def size_multiple(self) -> int:
        """RTMO's coarsest feature map is stride 32."""
        return 32

    def __init__(self, config: MmposeConfig | None = None) -> None:
        super().__init__(config)
        self.init = self.config.init

    def weight_files(self, base: Path) -> list[Path]:
        """The checkpoint (init: weights); synthetic weights are made by the export from the seed."""
        if self.config.init == "synthetic":
            return []
        from recipekit.sources.mmpose.mmdeploy_cfg import resolve_weights

        return [resolve_weights(base, str(self.config.weights), self.config.config)]

    def export(self, recipe: Recipe, out: Path, patches: list[contextlib.AbstractContextManager]) -> ExportInfo:
        """Write out/model.onnx with mmdeploy's torch2onnx; the checkpoint it used stays in `out`."""
        from recipekit.sources.mmpose import mmdeploy_cfg as cfgs

        hw, nms = tuple(recipe.export.imgsz), _nms(recipe)
        if recipe.export.dynamic.hw:
            raise RecipeError(
                recipe.base_dir or "recipe",
                "export.dynamic.hw",
                "RTMO's deploy graph bakes its "
                "priors for one input size: dynamic H/W is not supported; write one recipe per (H, W)",
            )
        model_cfg = cfgs.model_config(self._config_file(), hw, nms)
        checkpoint = self._checkpoint(recipe, out)
        deploy_cfg = cfgs.deploy_config(hw, recipe.export.opset, recipe.export.dynamic_batch, nms)
        images = self._images(recipe)[:1] * (1 if recipe.export.dynamic_batch else recipe.export.batch.max)
        with contextlib.ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            stack.enter_context(cfgs.quiet())
            stack.enter_context(cfgs.torchscript_onnx_export())
            stack.enter_context(mmengine_loading(self.config.trust_code))  # mmdeploy reads it: never run
            from mmdeploy.apis import torch2onnx

            torch2onnx(images, str(out), "model.onnx", deploy_cfg, model_cfg, str(checkpoint), device="cpu")
        cfgs.zero_padding_rows(out / "model.onnx", nms.score_thr)
        return ExportInfo(["input"], ["dets", "keypoints"], output_kinds(nms), self._notes(nms, checkpoint))

    @contextlib.contextmanager
    def reference(
        self, recipe: Recipe, export_dir: Path, patches: list[contextlib.AbstractContextManager]
    ) -> Iterator[Forward]:
        """The export's checkpoint in mmpose's ordinary mode: priors and positional encoding come
        from the real feature maps, not from the deploy-time constants."""
        from recipekit.sources.mmpose import mmdeploy_cfg as cfgs
        from recipekit.sources.mmpose.model import build, predict

        model_cfg = cfgs.model_config(self._config_file(), tuple(recipe.export.imgsz), _nms(recipe))
        synthetic = self.config.init == "synthetic"
        checkpoint = export_dir / "synthetic.pth" if synthetic else self.weight_files(Path(recipe.base_dir))[0]
        with contextlib.ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            stack.enter_context(cfgs.quiet())
            model = build(model_cfg, checkpoint, self.config.trust_code and not synthetic)
            yield lambda x: predict(model, x)

    def _config_file(self) -> Path:
        from recipekit.sources.mmpose.mmdeploy_cfg import configs_root

        path = configs_root() / self.config.config
        if not path.is_file():
            raise RecipeError("recipe", "source.config", f"no mmpose config {self.config.config} (looked at {path})")
        return path

    def _images(self, recipe: Recipe) -> list[Any]:
        from recipekit.sources.synthetic import sample_images

        return sample_images(recipe.input.samples, Path(recipe.base_dir))

    def _checkpoint(self, recipe: Recipe, out: Path) -> Path:
        """The weights file, or synthetic weights written to out/synthetic.pth."""
        if self.config.init == "weights":
            return self.weight_files(Path(recipe.base_dir))[0]
        from recipekit.onnx.preprocess import resize, to_tensor
        from recipekit.sources.mmpose import mmdeploy_cfg as cfgs
        from recipekit.sources.mmpose.model import synthesize

        pre = recipe.input.preprocess
        inputs = [to_tensor(resize(img, SYNTH_HW, pre)[0], pre) for img in self._images(recipe)]
        with cfgs.quiet():
            cfg = cfgs.model_config(self._config_file(), SYNTH_HW, _nms(recipe))
            synthesize(cfg, self.config.seed, inputs, out / "synthetic.pth")
        return out / "synthetic.pth"

    def _notes(self, nms: NmsParams, checkpoint: Path) -> dict[str, Any]:
        from importlib.metadata import version

        notes: dict[str, Any] = {
            "init": self.config.init,
            "config": self.config.config,
            "mmpose": version("mmpose"),
            "exporter": f"mmdeploy {version('mmdeploy')} torch2onnx",
            "nms": vars(nms),
        }
        if self.config.init == "synthetic":
            notes.update(seed=self.config.seed, weights=SYNTHETIC_NOTE)
        else:
            notes["weights"] = checkpoint.name
        return notes


def output_kinds(nms: NmsParams) -> dict[str, dict[str, Any]]:
    """One detection group: dets (B, N, 5: x1 y1 x2 y2 in input pixels, score) and keypoints (B, N, K, 3:
    x, y px, visibility probability); padding rows are all zeros (see zero_padding_rows)."""
    from recipekit.recipe import outputs as o

    dets = o.Detections(group="dets", columns=[o.box(0), o.score(4)], score_threshold=nms.score_thr)
    kpts = o.Detections(group="dets", field=o.whole("keypoints", dims=3, visibility="probability"))
    return o.declare({"dets": dets, "keypoints": kpts})


def _nms(recipe: Recipe) -> NmsParams:
    """The recipe's NMS thresholds, or RTMO's own test_cfg (score 0.1, IoU 0.65) with 100 detections."""
    nms = recipe.export.nms
    return NmsParams(nms.score, nms.iou, nms.max_det) if nms else NmsParams(0.1, 0.65, 100)
