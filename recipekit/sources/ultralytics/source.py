"""Ultralytics models (YOLOv3..YOLO26 detect, segment, pose, obb, classify; YOLOv10; RT-DETR) exported
through Ultralytics' own exporter.

The model is built from its architecture YAML with a fixed seed (`init: random` or `synthetic`), or
loaded from a weights file on disk through the safe checkpoint loader (a full Ultralytics checkpoint,
or a state dict / safetensors file for `source.model`'s architecture). The head (read at plan time
from the YAML or the checkpoint's pickle, see `arch`) decides the task, the preprocessing Ultralytics'
own predictor applies (letterbox or classify_transforms) and what the outputs mean. The exporter's
prepared module (fused, head in export mode) is saved beside the ONNX so the golden step compares
against exactly what was exported.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from recipekit.core.errors import RecipeError
from recipekit.sources import checkpoint
from recipekit.sources.base import ExportInfo, Forward, Source, WeightsConfig
from recipekit.sources.ultralytics import arch as arch_mod
from recipekit.sources.ultralytics import env as _ultralytics_env
from recipekit.sources.ultralytics.arch import Arch, expected_resize

if TYPE_CHECKING:
    from recipekit.recipe.schema import Recipe


class UltralyticsConfig(WeightsConfig):
    kind: Literal["ultralytics"] = "ultralytics"
    model: str = Field(
        "yolo11n.yaml",
        description="architecture YAML shipped by Ultralytics (yolov8n.yaml, yolo11n-pose.yaml, yolo12n-cls.yaml, "
        "yolo11n-obb.yaml, yolov10n.yaml, rtdetr-l.yaml, yolov8n-rtdetr.yaml) or a path relative to the recipe; with "
        "init: weights and a state dict (safetensors), the architecture the weights are for",
    )
    weights: str | None = Field(
        None, description="weights file (.pt) on disk, relative to the recipe; nothing is downloaded"
    )
    init: Literal["weights", "synthetic", "random"] = Field(
        "weights",
        description="weights: load `weights`; synthetic: seeded + BatchNorm recalibrated on sample images (detects "
        "things); random: seeded architecture init",
    )
    seed: int = Field(0, description="seed for architecture weights")
    end2end: bool = Field(
        False, description="YOLOv10/26: export the NMS-free one-to-one head (B, max_det, 6) instead of the raw head"
    )


@contextmanager
def only_batch_dynamic(active: bool) -> Iterator[None]:
    """Ultralytics' `dynamic=True` makes batch, height and width dynamic together; when the recipe
    declares only a dynamic batch, keep H and W static so shape inference (and TensorRT) sees them."""
    from ultralytics.utils.export import engine

    original = engine.torch2onnx

    def torch2onnx(model: Any, *args: Any, dynamic: dict | None = None, **kwargs: Any) -> str:
        if dynamic:
            dynamic = {name: {0: axes[0]} for name, axes in dynamic.items() if 0 in axes}
        # RT-DETR's decoder in dynamic mode computes its query count from traced shapes, leaving the
        # output's (B, 300, 6) as (B, ?, ?); with H and W static its anchors and top-k are constants.
        heads = [m for m in model.modules() if type(m).__name__ == "RTDETRDecoder" and m.dynamic]
        for m in heads:
            m.dynamic = False
        try:
            return original(model, *args, dynamic=dynamic, **kwargs)
        finally:
            for m in heads:
                m.dynamic = True

    engine.torch2onnx = torch2onnx if active else original
    try:
        yield
    finally:
        engine.torch2onnx = original


def check_preprocess(recipe: Recipe, arch: Arch) -> None:
    """Ultralytics models take RGB 0..1 NCHW, resized as its own predictor resizes: letterbox (pad
    114) for detectors, classify_transforms for classifiers. Any other declaration is refused."""
    from recipekit.onnx.preprocess import RGB01_NCHW, mismatch

    pre = recipe.input.preprocess
    bad = mismatch(pre, RGB01_NCHW)
    if bad:
        key, want, got = bad
        raise RecipeError(
            recipe.origin,
            f"input.preprocess.{key}",
            f"Ultralytics models take RGB pixels scaled to 0..1 in NCHW; expected {want!r}, got {got!r}",
        )
    want = expected_resize(arch, tuple(recipe.export.imgsz))
    if pre.resize != want:
        how = "letterboxes detectors" if want == "letterbox" else "resizes and centre-crops classifiers"
        raise RecipeError(
            recipe.origin,
            "input.preprocess.resize",
            f"Ultralytics' predictor {how} ({arch.head} head, imgsz {list(recipe.export.imgsz)}): expected "
            f"resize: {want}, got {pre.resize}",
        )
    other = mismatch(pre, {"pad": "center", "crop_fraction": 1.0, "pad_tensor_value": None})
    if other:
        key, want_value, got = other
        raise RecipeError(
            recipe.origin,
            f"input.preprocess.{key}",
            f"Ultralytics' predictor uses {key}: {want_value!r}; got {got!r}",
        )
    if want == "letterbox" and pre.pad_value != 114:
        raise RecipeError(
            recipe.origin,
            "input.preprocess.pad_value",
            f"Ultralytics' LetterBox pads with 114; expected 114, got {pre.pad_value}",
        )


class UltralyticsSource(Source):
    imports: ClassVar[tuple[str, ...]] = ("torch", "ultralytics", "onnx", "cv2")  # gates import onnxruntime
    name: ClassVar[str] = "ultralytics"
    version: ClassVar[str] = "3"  # 3: reference.pt keeps torch's own archive layout (sources.determinism)
    Config = UltralyticsConfig
    checkpoint_family: ClassVar[str] = "ultralytics"

    @classmethod
    def before_import(cls) -> None:
        _ultralytics_env.prepare()  # offline, settings in a temporary folder: before `import ultralytics`

    def size_multiple(self) -> int:
        """YOLO's coarsest level is stride 32 (P5 models), 64 for the -p6 ones."""
        return 64 if "p6" in Path(self.config.model).stem else 32

    @property
    def init(self) -> str:  # type: ignore[override]
        return self.config.init

    def weight_files(self, base: Path) -> list[Path]:
        if self.config.init != "weights":
            return []
        if not self.config.weights:
            raise RecipeError(
                str(base),
                "source.weights",
                "init: weights needs a weights file; to build from the architecture alone set source.init: synthetic "
                "(or random)",
            )
        path = (base / self.config.weights).resolve()
        if not path.is_file():
            raise RecipeError(
                str(base),
                "source.weights",
                f"weights file not found: {path}; nothing is downloaded. To build from the architecture alone set "
                "source.init: synthetic (seeded, BatchNorm recalibrated) or random",
            )
        return [path]

    def arch(self, recipe: Recipe) -> Arch:
        """The head and task, read without importing Ultralytics (plan time): from a full checkpoint's
        pickle, else from the architecture YAML `source.model` names."""
        from recipekit.sources.ultralytics import weights
        from recipekit.sources.ultralytics.known import check_model

        base = Path(recipe.base_dir or ".")
        if self.config.init == "weights":
            found = weights.checkpoint_arch(self.weight_files(base)[0], recipe.origin, self.config.trust_code)
            if found is not None:
                return found
        check_model(recipe.origin, base, self.config.model)
        return arch_mod.from_yaml(arch_mod.resolve_yaml(self.config.model, base, recipe.origin), recipe.origin)

    def build_model(self, recipe: Recipe) -> Any:
        """The Ultralytics model (an nn.Module: DetectionModel, RTDETRDetectionModel, ...), deterministic for a seed."""
        _ultralytics_env.prepare()
        from recipekit.sources.synthetic import seeded
        from recipekit.sources.ultralytics import weights

        base, trust = Path(recipe.base_dir or "."), self.config.trust_code
        arch = self.arch(recipe)
        if self.config.init == "weights":
            path = self.weight_files(base)[0]
            if arch.where == str(path):  # a full Ultralytics checkpoint
                return weights.load_checkpoint_model(path, trust)
        yaml_path = arch_mod.resolve_yaml(self.config.model, base, recipe.origin)
        with seeded(self.config.seed):
            model = weights.from_yaml(self.config.model if arch_mod.is_shipped(yaml_path) else yaml_path, arch, trust)
        if self.config.init == "weights":
            weights.load_state(model, path, trust)
        elif self.config.init == "synthetic":
            from recipekit.sources.determinism import single_thread
            from recipekit.sources.ultralytics.synth import synthesize

            with single_thread():  # BatchNorm statistics are reductions: one thread, one result
                synthesize(model, recipe)
        return model

    def _args(self, recipe: Recipe) -> dict[str, Any]:
        ex = recipe.export
        nms = ex.nms
        args = {
            "format": "onnx",
            "imgsz": list(ex.imgsz),
            "opset": ex.opset,
            "simplify": ex.simplify,
            "dynamic": ex.dynamic_batch or ex.dynamic.hw,
            "batch": ex.batch.max,
            "device": "cpu",
            "nms": True if nms else (False if self.config.end2end else None),
            "verbose": False,
            "mode": "export",
        }
        if nms:
            args.update(iou=nms.iou, conf=nms.score, max_det=nms.max_det)
        return args

    def check_recipe(self, recipe: Recipe) -> None:
        super().check_recipe(recipe)
        arch = self.arch(recipe)
        check_preprocess(recipe, arch)
        arch_mod.check_export(arch, recipe, self.config)

    def export(self, recipe: Recipe, out: Path, patches: list[Any]) -> ExportInfo:
        self.check_recipe(recipe)
        with ExitStack() as stack:
            for p in patches:
                stack.enter_context(p)
            model = self.build_model(recipe)
            from recipekit.sources.ultralytics.io import undated_exporter

            model.pt_path = str(out / "model.pt")  # the exporter writes model.onnx beside it
            exporter = undated_exporter(self._args(recipe))
            with only_batch_dynamic(not recipe.export.dynamic.hw):
                exporter(model=model)
        from recipekit.sources.determinism import save_torch
        from recipekit.sources.ultralytics.io import drop_export_date, export_info

        exporter.model.pt_path = None  # a temporary path: not part of the model
        save_torch({"model": exporter.model, "args": vars(exporter.args)}, out / "reference.pt")
        drop_export_date(out / "model.onnx")
        return export_info(out / "model.onnx", exporter, self.config)

    @contextmanager
    def reference(self, recipe: Recipe, export_dir: Path, patches: list[Any]) -> Iterator[Forward]:
        _ultralytics_env.prepare()
        from types import SimpleNamespace

        import torch

        with ExitStack() as stack:
            for p in patches:
                stack.enter_context(p)
            saved = checkpoint.load(export_dir / "reference.pt", "ultralytics")  # read, never run
            model, args = saved["model"], SimpleNamespace(**saved["args"])
            if args.nms:
                from ultralytics.engine.exporter import NMSModel

                model = NMSModel(model, args)
            model.eval()

            def forward(x: Any) -> list[Any]:
                with torch.no_grad():
                    y = model(torch.from_numpy(x))
                ys = y if isinstance(y, (list, tuple)) else [y]
                return [t.numpy() for t in ys if isinstance(t, torch.Tensor)]

            yield forward
