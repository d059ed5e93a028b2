"""Ultralytics YOLO (detect, pose, seg, YOLOv10) exported through Ultralytics' own exporter.

The model is built from its architecture YAML with a fixed seed (`init: random` or `synthetic`) or
loaded from a weights file on disk. The exporter's prepared module (fused, head in export mode) is
saved beside the ONNX so the golden step compares against exactly what was exported.
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
from recipekit.sources.ultralytics import env as _ultralytics_env

if TYPE_CHECKING:
    from recipekit.recipe.schema import Recipe


class UltralyticsConfig(WeightsConfig):
    kind: Literal["ultralytics"] = "ultralytics"
    model: str = Field(
        "yolo11n.yaml",
        description="architecture YAML shipped by Ultralytics (yolo11n.yaml, yolo11n-pose.yaml, yolov10n.yaml) or a "
        "path",
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

    def torch2onnx(*args: Any, dynamic: dict | None = None, **kwargs: Any) -> str:
        if dynamic:
            dynamic = {name: {0: axes[0]} for name, axes in dynamic.items() if 0 in axes}
        return original(*args, dynamic=dynamic, **kwargs)

    engine.torch2onnx = torch2onnx if active else original
    try:
        yield
    finally:
        engine.torch2onnx = original


def check_preprocess(recipe: Recipe) -> None:
    """Ultralytics models take RGB 0..1 NCHW: any other declared preprocessing is refused."""
    from recipekit.onnx.preprocess import RGB01_NCHW, mismatch

    bad = mismatch(recipe.input.preprocess, RGB01_NCHW)
    if bad:
        key, want, got = bad
        raise RecipeError(
            recipe.origin,
            f"input.preprocess.{key}",
            f"Ultralytics models take RGB pixels scaled to 0..1 in NCHW; expected {want!r}, got {got!r}",
        )


class UltralyticsSource(Source):
    name: ClassVar[str] = "ultralytics"
    version: ClassVar[str] = "2"
    Config = UltralyticsConfig
    checkpoint_family: ClassVar[str] = "ultralytics"

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

    def build_model(self, recipe: Recipe) -> Any:
        """The Ultralytics model object (YOLO), deterministic for a given seed."""
        _ultralytics_env.prepare()
        from ultralytics import YOLO

        from recipekit.sources.synthetic import seeded

        with checkpoint.ultralytics_loading(self.config.trust_code):
            if self.config.init == "weights":
                return YOLO(str(self.weight_files(Path(recipe.base_dir))[0]))
            with seeded(self.config.seed):
                yolo = YOLO(self.config.model)
        if self.config.init == "synthetic":
            from recipekit.sources.determinism import single_thread
            from recipekit.sources.ultralytics.synth import synthesize

            with single_thread():  # BatchNorm statistics are reductions: one thread, one result
                synthesize(yolo.model, recipe)
        return yolo

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
        from recipekit.sources.ultralytics.known import check_model

        check_preprocess(recipe)
        if self.config.init != "weights":
            check_model(recipe.origin, Path(recipe.base_dir), self.config.model)
        super().check_recipe(recipe)

    def export(self, recipe: Recipe, out: Path, patches: list[Any]) -> ExportInfo:
        with ExitStack() as stack:
            for p in patches:
                stack.enter_context(p)
            yolo = self.build_model(recipe)
            from ultralytics.engine.exporter import Exporter

            yolo.model.pt_path = str(out / "model.pt")  # the exporter writes model.onnx beside it
            exporter = Exporter(overrides=self._args(recipe))
            with only_batch_dynamic(not recipe.export.dynamic.hw):
                exporter(model=yolo.model)
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
