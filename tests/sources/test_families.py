"""Every model family a user brings, built for real to ort at a small size: parity against PyTorch,
batch-consistency where the batch is dynamic, and a blank image (empty-input).

Ultralytics: one model of each task (detect: YOLOv10 NMS-free, segment: YOLO12 with NMS, pose:
YOLOv8 with NMS, obb: YOLO11 raw head, classify: YOLOv8) and RT-DETR; torchvision: Mask R-CNN
(masks as mask IoU), Keypoint R-CNN (keypoints in pixels), RetinaNet and SSD300 (one-stage); the python
source: a tiny module from tests/helpers/python_models.py. One build per recipe (module-scoped).
Plan-time refusals (exit 2, key path, what is supported) are quick and not marked slow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers.common import RECIPES, manifest

from recipekit.onnx.wire import read_header

ROOT = Path(__file__).resolve().parents[2]

BUILDS = {
    # recipe: (size override, gates expected to pass)
    "yolov10n-dynamic": ("export.imgsz=160", ("parity", "batch-consistency")),
    "yolo12n-seg": ("export.imgsz=160", ("parity", "empty-input")),
    "yolov8n-pose": ("export.imgsz=160", ("parity", "batch-consistency", "empty-input")),
    "yolo11n-obb": ("export.imgsz=160", ("parity", "batch-consistency", "empty-input")),
    "yolov8n-cls": ("export.imgsz=160", ("parity", "batch-consistency")),  # empty-input: not applicable
    "yolov8n-rtdetr": ("export.imgsz=160", ("parity", "batch-consistency", "empty-input")),
    "maskrcnn-r50": ("export.imgsz=224", ("parity", "empty-input")),
    "keypointrcnn-r50": ("export.imgsz=224", ("parity", "empty-input")),
    "retinanet-r50": ("export.imgsz=224", ("parity", "empty-input")),
    "ssd300-vgg16": ("export.imgsz=300", ("parity", "empty-input")),  # resized to 300 inside at any size
}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("families")


def _build(root: Path, recipe: Path, *overrides: str) -> tuple[int, dict | None]:
    from recipekit.cli import main

    name = recipe.stem
    code = main(
        [
            "build",
            str(recipe),
            *overrides,
            "--targets",
            "ort",
            "--cache",
            str(root / "cache"),
            "--out",
            str(root / "out"),
            "--quiet",
        ]
    )
    path = root / "out" / name / "ort" / "manifest.json"
    return code, (json.loads(path.read_text()) if path.is_file() else None)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BUILDS))
def test_family_builds_and_passes(root, name) -> None:
    size, gates = BUILDS[name]
    code, m = _build(root, RECIPES / f"{name}.yaml", size)
    assert code == 0, f"{name}: build failed"
    for gate in gates:
        assert m["gates"][gate]["passed"] is True, (gate, m["gates"][gate])
    if name == "yolov8n-cls":  # class scores carry no count that could be zero
        assert m["gates"]["empty-input"]["status"] == "not applicable"
    assert m["verdict"] == "passed"
    assert m["gates"]["parity"]["figures"]["cases"] >= 2
    assert m["source"]["init"] == "synthetic"
    published = read_header(root / "out" / name / "ort" / m["artifact"]["path"]).metadata
    assert "date" not in published  # an export time would make every export's bytes new


@pytest.mark.slow
def test_one_stage_at_the_recipes_own_size(tmp_path) -> None:
    """RetinaNet at its recipe's size (256) as well as 224: its synthetic heads give a few detections
    on photos and none on blank images at whatever size the head is calibrated for."""
    code, m = _build(tmp_path, RECIPES / "retinanet-r50.yaml")
    assert code == 0, "retinanet-r50 at 256 failed"
    assert all(m["gates"][g]["passed"] is True for g in ("parity", "empty-input")), m["gates"]
    rows = m["gates"]["parity"]["figures"]["rows"]
    assert all(r["shape"] == [256, 256] and 0 < r["matched"] < 20 for r in rows), rows


@pytest.mark.slow
def test_classifier_preprocessing_is_ultralytics_own(root) -> None:
    """The manifest records classify_transforms' resize + centre crop, and the kinds its outputs have."""
    m = manifest(root / "out", "yolov8n-cls", "ort")
    assert m["preprocess"]["resize"] == "center-crop"
    assert m["output_kinds"]["output0"]["kind"] == "class_scores"


@pytest.mark.slow
def test_rtdetr_is_declared(root) -> None:
    rt = manifest(root / "out", "yolov8n-rtdetr", "ort")
    box = rt["output_kinds"]["output0"]["columns"][0]
    assert (box["format"], box["unit"]) == ("cxcywh", "normalized")
    assert rt["outputs"][0]["shape"][1:] == [300, 6]  # concrete under a dynamic batch


@pytest.mark.slow
def test_masks_and_keypoints_are_declared(root) -> None:
    mask = manifest(root / "out", "maskrcnn-r50", "ort")
    assert [o["name"] for o in mask["outputs"]] == ["boxes", "scores", "labels", "masks"]
    kp = manifest(root / "out", "keypointrcnn-r50", "ort")
    assert [o["name"] for o in kp["outputs"]][3:] == ["keypoints", "keypoints_scores"]
    for m, figure in ((mask, "mask_iou_mean"), (kp, "keypoints_px_max")):  # compared on matched detections
        rows = m["gates"]["parity"]["figures"]["rows"]
        assert all(r["matched"] > 0 and figure in r for r in rows), rows


@pytest.mark.slow
def test_python_source_tiny_module(tmp_path, monkeypatch, cli) -> None:
    """A module from a factory on the path, exported by torch.onnx, with declared output kinds."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY)
    code, out, err = cli("build", recipe, "--targets", "ort", "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code == 0, out + err
    m = manifest(tmp_path / "o", "tiny", "ort")
    assert {g: m["gates"][g]["status"] for g in ("parity", "batch-consistency", "empty-input")} == {
        "parity": "passed",
        "batch-consistency": "passed",
        "empty-input": "not applicable",  # class scores and a feature map: no count that could be zero
    }
    assert [o["name"] for o in m["outputs"]] == ["probs", "features"]
    assert m["output_kinds"]["probs"]["kind"] == "class_scores"


TINY = """
name: tiny
source:
  kind: python
  factory: helpers.python_models:tiny_classifier
  args: {classes: 5, width: 8}
  outputs: [probs, features]
  output_kinds: {probs: {kind: class_scores, unit: probability}}
input:
  preprocess: {resize: stretch}
  samples: [ultralytics:bus.jpg, ultralytics:zidane.jpg]
export: {opset: 17, imgsz: [64, 96], batch: {min: 1, opt: 1, max: 3}}
targets: {ort: {}}
gates: {parity: {}, batch-consistency: {}, empty-input: {}}
"""

REFUSED = [
    ("yolov8n-rtdetr", ["export.nms=true"], "export.nms", "RT-DETR"),
    ("yolov8n-rtdetr", ["export.opset=15"], "export.opset", "opset 16"),
    ("yolov8n-cls", ["input.preprocess.resize=letterbox"], "input.preprocess.resize", "center-crop"),
    ("yolov8n-cls", ["export.nms=true"], "export.nms", "classifiers"),
    ("yolo11n-obb", ["source.end2end=true"], "source.end2end", "one-to-one"),
    ("yolo11n-obb", ["input.preprocess.pad_value=0"], "input.preprocess.pad_value", "114"),
    ("yolo11n-obb", ["input.preprocess.pad=top-left"], "input.preprocess.pad", "'center'"),
    ("yolov8n-cls", ["input.preprocess.crop_fraction=0.875"], "input.preprocess.crop_fraction", "1.0"),
    ("yolo11n-obb", ["source.model=yolov8s-worldv2.yaml"], "source.model", "supported heads"),
    ("yolo11n-obb", ["source.model=yolo11n-obbb.yaml"], "source.model", "unknown Ultralytics model"),
    ("retinanet-r50", ["source.builder=retinanet_r18"], "source.builder", "supported"),
    ("retinanet-r50", ["+source.rpn_score_thresh=0.1"], "source.rpn_score_thresh", "no RPN"),
    ("python-mobilenetv3", ["source.factory=nosuchpkg.models:build"], "source.factory", "no module"),
    ("python-mobilenetv3", ["source.factory=torchvision.models.resnet:nosuchbuilder"], "source.factory", "defines no"),
    ("python-mobilenetv3", ["source.output_kinds.logits.kind=boxes"], "source.output_kinds", "kind"),
]


@pytest.mark.parametrize(("recipe", "overrides", "key", "words"), REFUSED)
def test_what_cannot_be_built_is_refused_at_plan(cli, tmp_path, recipe, overrides, key, words) -> None:
    code, out, err = cli("plan", RECIPES / f"{recipe}.yaml", *overrides, "--cache", tmp_path / "c")
    assert code == 2, out + err
    assert key in err and words in err, err
    assert "Traceback" not in err


def test_center_crop_is_classify_transforms() -> None:
    """recipekit's center-crop equals Ultralytics' classify_transforms (PIL resize + centre crop)."""
    import cv2
    import numpy as np
    from PIL import Image

    from recipekit.onnx.preprocess import image_tensor, resolve_sample
    from recipekit.recipe.schema import Preprocess

    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics.data.augment import classify_transforms

    for spec in ("ultralytics:bus.jpg", "ultralytics:zidane.jpg"):
        path = resolve_sample(spec, ROOT)
        for size in (97, 160, 224):
            ours = image_tensor(path, (size, size), Preprocess(resize="center-crop"))
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            ref = classify_transforms(size)(Image.fromarray(rgb)).numpy()[None]
            assert ours.shape == ref.shape and np.abs(ours - ref).max() < 1e-6


@pytest.mark.slow
def test_ultralytics_weights_from_checkpoint_or_state_dict(tmp_path) -> None:
    """A full checkpoint's head is read at plan from its pickle (never run); a safetensors state dict
    fills the architecture source.model names. Both rebuild the very weights that were saved."""
    import torch
    from safetensors.torch import save_file

    from recipekit.recipe.load import load
    from recipekit.sources.ultralytics.source import UltralyticsSource
    from recipekit.sources.ultralytics.weights import from_yaml

    recipe = load(RECIPES / "yolo11n-obb.yaml", ["export.imgsz=160"])
    src = UltralyticsSource(recipe.source)
    model = from_yaml("yolo11n-obb.yaml", src.arch(recipe))
    torch.save({"model": model}, tmp_path / "obb.pt")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "obb.safetensors"))
    for weights, where in (("obb.pt", "obb.pt"), ("obb.safetensors", "yolo11-obb.yaml")):
        cfg = recipe.source.model_copy(update={"init": "weights", "weights": str(tmp_path / weights)})
        r = recipe.model_copy(update={"source": cfg})
        source = UltralyticsSource(cfg)
        source.check_recipe(r)
        arch = source.arch(r)
        assert (arch.head, arch.task) == ("OBB", "obb") and arch.where.endswith(where)
        built = source.build_model(r)
        ref = model.state_dict()
        assert all(torch.equal(v.float(), ref[k].float()) for k, v in built.state_dict().items() if k in ref)
