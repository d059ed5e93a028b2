"""export.precision end to end on ONNX Runtime: INT8 (QDQ, calibrated) and fp16 builds pass their gates,
a badly calibrated INT8 model fails the accuracy gate, a labelled set gives mAP figures for both sides,
the calibration images are in the key, and the old fp16 knobs are refused with a pointer."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import onnx
import pytest
from helpers.common import manifest
from helpers.precision_models import write_recipe

from recipekit.onnx.preprocess import resolve_sample


def build(cli, tmp_path, recipe, *over):
    return cli("build", recipe, *over, "--cache", tmp_path / "c", "--out", tmp_path / "o")


@pytest.mark.slow
def test_int8_build_passes_its_gates(tmp_path, cli):
    code, out, err = build(cli, tmp_path, write_recipe(tmp_path, "int8"))
    assert code == 0, out + err
    m = manifest(tmp_path / "o", "tinydet", "ort")
    acc = m["gates"]["accuracy"]
    assert acc["status"] == "passed" and acc["figures"]["judged"] and acc["figures"]["agreement_map50_95"] >= 0.8
    assert acc["figures"]["reference_boxes"] > 0 and acc["figures"]["artifact_boxes"] > 0
    parity = m["gates"]["parity"]
    assert parity["status"] == "not applicable" and "accuracy gate judges" in parity["message"]
    assert m["verdict"] == "passed" and m["unverified"] == []
    ops = {n.op_type for n in onnx.load(str(tmp_path / "o/tinydet/ort/model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    prec = m["precision"]  # what the precision step made, in the manifest
    assert prec["precision"] == "int8" and prec["summary"]["quantize_linear"] > 0
    assert prec["calibration_images"] == ["calibration/0000-bus.jpg", "calibration/0001-zidane.jpg"]


@pytest.mark.slow
def test_int8_calibrated_on_one_black_image_fails_the_accuracy_gate(tmp_path, cli):
    (tmp_path / "calib").mkdir()
    cv2.imwrite(str(tmp_path / "calib" / "black.png"), np.zeros((320, 320, 3), np.uint8))
    code, out, err = build(cli, tmp_path, write_recipe(tmp_path, "int8", input=", calibration: calib"))
    assert code == 1, out + err
    assert "gate accuracy failed: dets: " in out + err, out + err
    assert not (tmp_path / "o/tinydet/ort").exists()


@pytest.mark.slow
def test_calibration_images_are_in_the_key(tmp_path, cli):
    (tmp_path / "calib").mkdir()
    for s in ("bus.jpg", "zidane.jpg"):
        shutil.copyfile(resolve_sample(f"ultralytics:{s}", tmp_path), tmp_path / "calib" / s)
    recipe = write_recipe(tmp_path, "int8", input=", calibration: 'calib/*.jpg'")
    assert build(cli, tmp_path, recipe)[0] == 0
    code, out, _ = build(cli, tmp_path, recipe)
    assert code == 0 and "cached" in next(line for line in out.splitlines() if "precision:int8" in line)
    img = cv2.imread(str(tmp_path / "calib" / "zidane.jpg"))
    cv2.imwrite(str(tmp_path / "calib" / "zidane.jpg"), cv2.flip(img, 1))
    code, out, err = build(cli, tmp_path, recipe)
    assert code == 0, out + err
    assert "ran" in next(line for line in out.splitlines() if "precision:int8" in line)
    assert "ran" not in next(line for line in out.splitlines() if "fix:chain" in line)  # only precision onwards


@pytest.mark.slow
def test_fp16_build_passes_its_gates(tmp_path, cli):
    code, out, err = build(cli, tmp_path, write_recipe(tmp_path, "fp16"))
    assert code == 0, out + err
    m = manifest(tmp_path / "o", "tinydet", "ort")
    assert m["gates"]["parity"]["status"] == "passed"
    acc = m["gates"]["accuracy"]  # recorded, not judged, for fp16: parity judges it
    assert acc["status"] == "not applicable" and not acc["figures"]["judged"]
    assert acc["figures"]["agreement_map50_95"] > 0.9
    assert m["verdict"] == "passed"
    half = onnx.load(str(tmp_path / "o/tinydet/ort/model.onnx"))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in half.graph.initializer)


# Boxes on the shipped sample images (x1, y1, x2, y2 in image pixels; classes 0 and 1 of tinydet).
LABELS = {
    "bus.jpg": [(0, 48, 398, 245, 902), (0, 670, 380, 810, 876), (0, 221, 405, 344, 857), (1, 17, 230, 800, 750)],
    "zidane.jpg": [(0, 747, 40, 1141, 712), (0, 123, 193, 714, 712), (1, 437, 437, 524, 714)],
}


def _labelled(tmp_path, fmt):
    images = tmp_path / "val" / "images"
    images.mkdir(parents=True)
    for name in LABELS:
        shutil.copyfile(resolve_sample(f"ultralytics:{name}", tmp_path), images / name)
    if fmt == "yolo":
        (tmp_path / "val" / "labels").mkdir()
        for name, rows in LABELS.items():
            h, w = cv2.imread(str(images / name)).shape[:2]
            lines = [f"{c} {(a + b) / 2 / w} {(y + z) / 2 / h} {(b - a) / w} {(z - y) / h}" for c, a, y, b, z in rows]
            (tmp_path / "val" / "labels" / name.replace(".jpg", ".txt")).write_text("\n".join(lines) + "\n")
        return "val/labels"
    doc = {
        "images": [{"id": i + 1, "file_name": n} for i, n in enumerate(LABELS)],
        "categories": [{"id": 1, "name": "person"}, {"id": 7, "name": "bus"}],
        "annotations": [],
    }
    for i, rows in enumerate(LABELS.values()):
        for c, a, y, b, z in rows:
            doc["annotations"].append(
                {
                    "id": len(doc["annotations"]) + 1,
                    "image_id": i + 1,
                    "category_id": [1, 7][c],
                    "bbox": [a, y, b - a, z - y],
                    "area": (b - a) * (z - y),
                    "iscrowd": 0,
                }
            )
    (tmp_path / "val" / "coco.json").write_text(json.dumps(doc))
    return "val/coco.json"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["yolo", "coco"])
def test_labelled_set_gives_map_for_both_sides(tmp_path, cli, fmt):
    labels = _labelled(tmp_path, fmt)
    gates = f", accuracy: {{labelled: {{images: val/images, labels: {labels}}}, max_drop: 1.0}}"
    code, out, err = build(cli, tmp_path, write_recipe(tmp_path, "int8", gates=gates))
    assert code == 0, out + err
    lab = manifest(tmp_path / "o", "tinydet", "ort")["gates"]["accuracy"]["figures"]["labelled"]
    assert lab["images"] == 2 and lab["truth_boxes"] == 7
    for side in ("reference", "artifact"):
        assert isinstance(lab[side]["map50_95"], float) and 0 <= lab[side]["map50_95"] <= 1
        assert isinstance(lab[side]["map50"], float) and lab[side]["pred_boxes"] > 0
    assert lab["drop"] == pytest.approx(lab["reference"]["map50_95"] - lab["artifact"]["map50_95"], abs=1e-3)


@pytest.mark.parametrize(
    ("override", "key", "hint"),
    [
        ("+export.half=true", "export", "export.half was removed: set export.precision: fp16"),
        ("fixes=[fp16]", "fixes[0]", "fp16 is no longer a fix: set export.precision: fp16"),
        ("+targets.webgpu.fp16=true", "targets.webgpu", "fp16 was removed: set export.precision: fp16"),
        ("+targets.trt.int8=true", "targets.trt", "int8 was removed: set export.precision: int8"),
        ("+targets.trt-jetson.fp16=true", "targets.trt-jetson", "fp16 was removed: set export.precision: fp16"),
    ],
)
def test_old_fp16_knobs_are_refused_with_a_pointer(tmp_path, cli, override, key, hint):
    from helpers.common import RECIPES

    code, out, err = cli("plan", RECIPES / "yolo11n.yaml", override, "--cache", tmp_path / "c")
    assert code == 2 and f"{key}" in err and hint in err and "Traceback" not in err, out + err


@pytest.mark.parametrize(
    ("overrides", "hint"),
    [
        (["export.precision=int8", "+targets.webgpu={}"], "targets.webgpu: int8 QDQ is not supported"),
    ],
)
def test_targets_refuse_a_precision_at_plan(tmp_path, cli, overrides, hint):
    code, out, err = cli("plan", write_recipe(tmp_path, "fp32"), *overrides, "--cache", tmp_path / "c")
    assert code == 2 and "export.precision: " + hint in err, out + err
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("meta.json"))


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_jetson_bundle_per_precision_passes_device_check(tmp_path, cli, precision, monkeypatch):
    from recipekit.targets.trt.devicecheck import device_check

    recipe = write_recipe(tmp_path, precision)
    code, out, err = build(cli, tmp_path, recipe, "+targets.trt-jetson={}", "--targets", "trt-jetson")
    assert code == 0, out + err
    root = tmp_path / "o" / "tinydet" / "trt-jetson"
    spec = json.loads((root / "bundle.json").read_text())
    assert spec["precision"] == precision
    assert spec["golden"] == (
        "PyTorch source outputs"
        if precision == "fp32"
        else f"onnxruntime {ort_version()} CPU outputs of the {precision} model.onnx"
    )
    jp5 = (root / "commands-jp5.txt").read_text()
    assert {"fp32": "--onnx", "fp16": "--fp16", "int8": "--int8"}[precision] in jp5
    assert ("--stronglyTyped" in (root / "commands-jp6.txt").read_text()) == (precision != "fp32")
    for version in ("8.6.1", "10.3.0"):  # JetPack 5 and 6, only the version probe faked
        monkeypatch.setenv("RECIPEKIT_TENSORRT_VERSION", version)
        assert device_check(root, "ort") == 0


def _activation_types(path) -> set[str]:
    """The element types of a QDQ model's activation zero points (QuantizeLinear's third input)."""
    import onnx

    model = onnx.load(str(path))
    zero = {i.name: i.data_type for i in model.graph.initializer}
    names = {n.input[2] for n in model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2}
    return {onnx.TensorProto.DataType.Name(zero[n]) for n in names if n in zero}


@pytest.mark.slow
def test_uint8_for_ort_and_the_symmetric_twin_for_tensorrt_from_one_recipe(tmp_path, cli):
    """ONNX Runtime's fast x86 kernels take uint8 activations, TensorRT symmetric int8 only: one build
    quantizes once and each target compiles the QDQ it takes (the same float nodes)."""
    recipe = write_recipe(tmp_path, "int8")
    args = ("+export.quantization.activations=uint8", "+targets.trt-jetson={}", "--targets", "ort,trt-jetson")
    code, out, err = build(cli, tmp_path, recipe, *args)
    assert code == 0, out + err
    ort_dir, jetson = tmp_path / "o" / "tinydet" / "ort", tmp_path / "o" / "tinydet" / "trt-jetson"
    assert _activation_types(ort_dir / "model.onnx") == {"UINT8"}
    assert _activation_types(jetson / "model.onnx") == {"INT8"}
    twin = json.loads((ort_dir / "manifest.json").read_text())["precision"]["summary"]["twin"]
    assert twin["activations"] == "int8" and twin["file"] == "model-int8.onnx"
    assert json.loads((jetson / "manifest.json").read_text())["verdict"] == "passed"


def ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "input.calibration: expected a folder, a glob or an image file, got 'nope'"),
        ("'nope/*.jpg'", "input.calibration: glob 'nope/*.jpg'"),
        ("tinydet.yaml", "is not an image file"),
        ("empty", "holds no image"),
    ],
)
def test_bad_calibration_is_one_line_exit_2(tmp_path, cli, spec, message):
    (tmp_path / "empty").mkdir()
    recipe = write_recipe(tmp_path, "int8", input=f", calibration: {spec}")
    code, out, err = cli("plan", recipe, "--cache", tmp_path / "c")
    assert code == 2 and message in err and "Traceback" not in err, out + err
