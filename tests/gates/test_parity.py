"""parity: raw tensors by atol/rtol, post-NMS detections matched by IoU and class, in pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.gate_models import (
    TV_KINDS,
    context,
    faster_rcnn_export,
    golden_from,
    recipe,
    save_graph,
    tensor_info,
    yolo_export,
)
from onnx import helper

from recipekit.gates.base import GateResult
from recipekit.gates.parity import Parity, ParityConfig
from recipekit.onnx.golden import Golden

POSE_KIND = {"output0": {"kind": "detections", "box": [0, 4], "score": 4, "class": 5, "keypoints": [6, 17, 3]}}


def scaled_graph(factor: float):
    """Y = X * factor: a real graph whose output differs from the identity reference by (factor - 1) * X."""
    k = helper.make_tensor("k", 1, [], [factor])
    nodes = [helper.make_node("Mul", ["X", "k"], ["Y"])]
    io = ([tensor_info("X", [1, 3, 32, 32])], [tensor_info("Y", [1, 3, 32, 32])])
    return save_graph(nodes, *io, f"scale-{factor}", [k])


def tiny(factor: float, **cfg) -> GateResult:
    rec = recipe(imgsz=(32, 32), batch=(1, 1, 1))
    golden = golden_from(lambda x: [x.copy()], rec, ["Y"])
    return Parity(ParityConfig(**cfg)).check(context(rec, scaled_graph(factor), golden))


def test_raw_tensor_within_and_beyond_tolerance():
    assert tiny(1.0).status == "passed"
    result = tiny(1.01, atol={"": 1e-3, "Y": 1e-3}, rtol=1e-3)
    assert result.status == "failed"
    assert result.failures[0].startswith("Y at 32x32 (bus.jpg): ")
    assert "beyond atol=0.001 and rtol=0.001" in result.failures[0]
    assert result.figures["outputs"]["Y"]["max_rel"] == pytest.approx(0.01, rel=1e-3)
    assert tiny(1.01, rtol=0.02).status == "passed"


def test_unknown_tolerance_key_fails_naming_it():
    result = tiny(1.0, atol={"": 1e-3, "Z": 1.0})
    assert result.status == "failed" and "atol: tolerance key 'Z' names no output" in result.failures[0]


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"box_px": -1.0}, "tolerances must be >= 0"),
        ({"iou_match": 1.5}, "iou_match must be in"),
        ({"rtol": {"": float("nan")}}, "NaN is not allowed"),
        ({"box_pix": 1.0}, "box_pix"),
    ],
)
def test_config_errors(cfg, message):
    with pytest.raises(ValueError, match=message):
        ParityConfig(**cfg)


@pytest.fixture(scope="module")
def pose_nms():
    """yolo11n-pose, nms=True, class biases zeroed so the random model keeps detections."""
    path, forward, names = yolo_export("yolo11n-pose.yaml", nms=True, detections=True)
    rec = recipe(imgsz=(256, 256), batch=(1, 1, 4), nms=True, shapes=[(256, 320)], dynamic_hw=True)
    return rec, path, golden_from(forward, rec, names)


@pytest.mark.slow
def test_pose_nms_detections_match(pose_nms):
    rec, path, golden = pose_nms
    result = Parity(ParityConfig()).check(context(rec, path, golden, POSE_KIND))
    assert result.status == "passed", result.failures
    json.dumps(result.to_json(), allow_nan=False)  # figures go into result.json / the manifest as they are
    out = result.figures["outputs"]["output0"]
    assert out["kind"] == "detections" and out["matched"] > 20 and out["unmatched_ref"] == 0
    assert out["keypoints_px_max"] < 0.1
    assert {tuple(r["shape"]) for r in result.figures["rows"]} == {(256, 256), (256, 320)}


@pytest.mark.slow
def test_pose_nms_shifted_keypoint_fails_with_figure_and_threshold(pose_nms):
    rec, path, golden = pose_nms
    case = golden.cases[0]
    shifted = case.outputs[0].copy()
    shifted[0, 0, 6 + 3 * 5] += 4.0  # keypoint 5 of the best detection, 4 px in x
    moved = Golden(golden.output_names, [type(case)(case.shape, case.sample, case.input, [shifted])])
    result = Parity(ParityConfig(keypoints_px=1.0)).check(context(rec, path, moved, POSE_KIND))
    assert result.status == "failed"
    assert len(result.failures) == 1
    assert result.failures[0].startswith("output0 at 256x256 (bus.jpg): output0 field keypoints: 1 matched")
    assert "beyond keypoints_px 1 px; worst: image 0 detection 0" in result.failures[0]


@pytest.mark.slow
def test_pose_nms_row_by_row_would_not_do(pose_nms):
    """Detections compared as a raw tensor with the same data: any reordering fails, matching does not."""
    rec, path, golden = pose_nms
    case = golden.cases[0]
    rows = case.outputs[0].copy()
    n = int((rows[0, :, 4] > 0).sum())
    rows[0, :n] = rows[0, :n][::-1]
    flipped = Golden(golden.output_names, [type(case)(case.shape, case.sample, case.input, [rows])])
    assert Parity(ParityConfig()).check(context(rec, path, flipped, POSE_KIND)).status == "passed"
    assert Parity(ParityConfig()).check(context(rec, path, flipped, {})).status == "failed"


@pytest.mark.slow
def test_yolo11n_seg_raw_tensors_per_output_tolerance():
    path, forward, names = yolo_export("yolo11n-seg.yaml")
    rec = recipe(imgsz=(256, 256), batch=(1, 2, 4))
    golden = golden_from(forward, rec, names)
    ok = Parity(ParityConfig()).check(context(rec, path, golden))
    assert ok.status == "passed", ok.failures
    assert set(ok.figures["outputs"]) == {"output0", "output1"}
    seg = {"output0": {"kind": "raw_head", "groups": [{"role": "box", "start": 0, "stop": 4, "format": "cxcywh"},
                                                      {"role": "class_scores", "start": 4, "stop": 84},
                                                      {"role": "mask_coefficients", "start": 84, "stop": 116}]},
           "output1": {"kind": "prototype_masks", "coefficients": "output0"}}  # fmt: skip
    scored, fwd, _ = yolo_export("yolo11n-seg.yaml", detections=True)  # candidates that score
    typed = Parity(ParityConfig()).check(context(rec, scored, golden_from(fwd, rec, names), seg))
    assert typed.status == "passed", typed.failures
    assert typed.figures["outputs"]["output0"]["compared_candidates"] > 0
    assert typed.figures["outputs"]["output1"]["kind"] == "prototype_masks"
    strict = Parity(ParityConfig(atol={"": 1e-3, "output1": 0.0}, rtol={"": 1e-3, "output1": 0.0})).check(
        context(rec, path, golden)
    )
    bad = [f for f in strict.failures if f.startswith("output1 at 256x256")]
    assert np.isfinite(ok.figures["outputs"]["output1"]["max_abs"])
    if ok.figures["outputs"]["output1"]["max_abs"] > 0:  # ORT and torch differ in the last bits
        assert strict.status == "failed" and "beyond atol=0 and rtol=0" in bad[0]


@pytest.mark.slow
def test_faster_rcnn_separate_outputs_matched_as_one_detection_list():
    """torchvision's boxes (N, 4), scores (N,), labels (N,): variable N, one group; the fixed graph too.

    On bus.jpg (the export's own sample, box_score_thresh 0.25 so the reference stays under the
    detection cap, which the golden step refuses) every detection pairs within 0.01 px."""
    rec, raw, fixed, golden = faster_rcnn_export()
    bus = Golden(golden.output_names, golden.cases[:1])
    assert bus.cases[0].sample == "bus.jpg" and len(bus.cases[0].outputs[0]) > 0
    for path in (raw, fixed):
        result = Parity(ParityConfig(min_score=0.3)).check(context(rec, path, bus, TV_KINDS))
        assert result.status == "passed", result.failures
        out = result.figures["outputs"]["detections"]
        assert out["matched"] >= 40 and out["box_px_max"] < 0.01 and out["score_abs_max"] < 1e-3
        assert out["unmatched_ref"] == 0 and out["unmatched_got"] == 0


SEG_NMS = {"output0": {"kind": "detections", "box": [0, 4], "score": 4, "class": 5, "extra": [6, 32]},
           "output1": {"kind": "prototype_masks", "coefficients": "output0"}}  # fmt: skip


@pytest.mark.slow
def test_yolo11n_seg_nms_mask_coefficients_that_differ_fail_parity():
    """The segmentation rows' mask coefficients (columns 6..37) and the prototypes are compared."""
    path, forward, names = yolo_export("yolo11n-seg.yaml", nms=True, detections=True)
    rec = recipe(imgsz=(256, 256), batch=(1, 1, 4), nms=True)
    golden = golden_from(forward, rec, names)
    ok = Parity(ParityConfig()).check(context(rec, path, golden, SEG_NMS))
    assert ok.status == "passed", ok.failures
    assert ok.figures["outputs"]["output0"]["matched"] > 5 and ok.figures["outputs"]["output1"]["decoded_masks"] > 5
    case = golden.cases[0]
    coef = case.outputs[0].copy()
    coef[0, 0, 6 + 3] += 0.5  # mask coefficient 3 of the best detection
    moved = Golden(golden.output_names, [type(case)(case.shape, case.sample, case.input, [coef, case.outputs[1]])])
    bad = Parity(ParityConfig()).check(context(rec, path, moved, SEG_NMS))
    assert bad.status == "failed"
    assert "output0 field mask_coefficients: 1 matched detection(s)" in bad.failures[0]
    assert "worst: image 0 detection 0" in bad.failures[0]
