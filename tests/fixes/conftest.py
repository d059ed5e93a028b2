"""Real Ultralytics exports the fix tests share (session-scoped: each export runs once).

Weights are seeded and made to detect through recipekit's synthetic init (BatchNorm recalibrated on
bus.jpg, class logits shifted so bus.jpg gives a handful of detections and a blank image none);
plain random weights score every anchor identically on every image, so "outputs unchanged where
the original detected something" could not be tested with them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from helpers.fix_models import SAMPLE, export_ultralytics, make_recipe


@pytest.fixture(scope="session")
def workdir() -> Any:
    with tempfile.TemporaryDirectory(prefix="recipekit-fix-tests-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def pose_recipe() -> Any:
    return make_recipe("yolo11n-pose.yaml", imgsz=320, opset=17, nms={"score": 0.25})


def _nms_args(recipe: Any) -> dict[str, Any]:
    nms = recipe.export.nms
    return {"nms": True, "conf": nms.score, "iou": nms.iou, "max_det": nms.max_det, "batch": 1}


@pytest.fixture(scope="session")
def pose_nms_onnx(workdir: Path, pose_recipe: Any) -> Path:
    """yolo11n-pose, nms=True, 320, opset 17: ultralytics' own NMS (zero-sized tensors on a blank image)."""
    return export_ultralytics(pose_recipe, workdir / "pose-nms", **_nms_args(pose_recipe))


@pytest.fixture(scope="session")
def pose_nms_fixed_onnx(workdir: Path, pose_recipe: Any) -> Path:
    """The same export with fixed-shape-nms's source patch active."""
    from recipekit.fixes.base import FixContext
    from recipekit.sources.ultralytics.fixed_shape_nms import FixedShapeNms

    patch = FixedShapeNms().patch(FixContext(pose_recipe))
    return export_ultralytics(pose_recipe, workdir / "pose-nms-fixed", patch, **_nms_args(pose_recipe))


@pytest.fixture(scope="session")
def v10_recipe() -> Any:
    return make_recipe("yolov10n.yaml", imgsz=320, opset=17, batch={"min": 1, "opt": 2, "max": 4})


@pytest.fixture(scope="session")
def v10_dynamic_onnx(workdir: Path, v10_recipe: Any) -> Path:
    """yolov10n, dynamic=True, batch=4, 320: the attention pe Conv gets unknown dims (field notes case 3)."""
    return export_ultralytics(v10_recipe, workdir / "v10-dynamic", dynamic=True, batch=4)


@pytest.fixture(scope="session")
def bus_tensor(pose_recipe: Any) -> Any:
    """bus.jpg letterboxed to 320, scaled 1/255, RGB, NCHW."""
    from recipekit.onnx.preprocess import image_tensor, resolve_sample

    return image_tensor(resolve_sample(SAMPLE, Path.cwd()), (320, 320), pose_recipe.input.preprocess)
