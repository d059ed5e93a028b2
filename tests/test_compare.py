"""recipekit.onnx.compare: tensor statistics and detection matching (numpy only, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from recipekit.onnx.compare import compare_detections, compare_outputs, compare_tensor, resolve

POSE = {"kind": "detections", "box": [0, 4], "score": 4, "class": 5, "keypoints": [6, 2, 3]}


def pose_rows(max_det: int = 6) -> np.ndarray:
    """(1, max_det, 12): three detections (two near-duplicates of different class) + zero padding."""
    out = np.zeros((1, max_det, 12), np.float32)
    out[0, 0] = [10, 10, 50, 60, 0.90, 0, 20, 30, 0.9, 40, 50, 0.8]
    out[0, 1] = [12, 11, 52, 61, 0.89, 1, 21, 31, 0.7, 41, 51, 0.6]
    out[0, 2] = [100, 80, 140, 150, 0.40, 0, 110, 90, 0.5, 120, 100, 0.5]
    return out


def test_reordered_near_equal_rows_with_padding_pass():
    ref = pose_rows()
    got = ref.copy()
    got[0, [0, 1]] = got[0, [1, 0]]  # near-equal scores swapped by the runtime
    got[0, :3, :4] += 0.05
    row = compare_detections(ref, got, POSE, name="output0")
    assert row["passed"], row.get("reason")
    assert (row["matched"], row["unmatched_ref"], row["unmatched_got"]) == (3, 0, 0)
    assert row["padding_ref"] == row["padding_got"] == 3
    assert row["box_px_max"] == pytest.approx(0.05, abs=1e-5)


def test_row_by_row_tensor_compare_would_fail_on_the_same_outputs():
    ref = pose_rows()
    got = ref.copy()
    got[0, [0, 1]] = got[0, [1, 0]]
    assert not compare_tensor("output0", ref, got, 1e-3, 1e-3)["passed"]


def test_missing_detection_fails_with_counts():
    ref = pose_rows()
    got = ref.copy()
    got[0, 2] = 0  # the result lost a detection (padding in its place)
    row = compare_detections(ref, got, POSE, name="output0")
    assert not row["passed"]
    assert (row["matched"], row["unmatched_ref"], row["unmatched_got"]) == (2, 1, 0)
    assert "unmatched_ref 1 > 0" in row["reason"] and "score 0.400" in row["reason"]


def test_missing_low_score_detection_ignored_below_min_score():
    ref = pose_rows()
    got = ref.copy()
    got[0, 2] = 0
    row = compare_detections(ref, got, POSE, {"min_score": 0.5}, name="output0")
    assert row["passed"] and row["ignored_below_min_score"] == 1


def test_shifted_keypoint_fails_with_the_figure_and_threshold():
    ref = pose_rows()
    got = ref.copy()
    got[0, 1, 9] += 3.0  # keypoint 1 of detection 1 moved 3 px in x
    row = compare_detections(ref, got, POSE, {"keypoints_px": 1.0}, name="output0")
    assert not row["passed"]
    assert row["keypoints_px_max"] == pytest.approx(3.0)
    assert "max keypoints_px 3 > keypoints_px 1" in row["reason"]
    assert row["worst"]["keypoints_px"] == {"value": pytest.approx(3.0), "image": 0, "ref_index": 1}


def test_wrong_class_is_unmatched():
    ref = pose_rows()
    got = ref.copy()
    got[0, 2, 5] = 3
    row = compare_detections(ref, got, POSE, name="output0")
    assert (row["unmatched_ref"], row["unmatched_got"]) == (1, 1) and not row["passed"]


def test_nan_score_fails():
    ref = pose_rows()
    got = ref.copy()
    got[0, 0, 4] = np.nan
    row = compare_detections(ref, got, POSE, name="output0")
    assert not row["passed"] and "score_abs nan" in row["reason"]


def test_batched_images_are_matched_separately():
    ref = np.concatenate([pose_rows(), pose_rows()[:, ::-1]])
    got = ref.copy()
    got[1] = ref[0]  # image 1 now holds image 0's rows in another order: same set
    assert compare_detections(ref, got, POSE, name="o")["passed"]
    got[1, 0] = 0
    assert compare_detections(ref, got, POSE, name="o")["unmatched_ref"] == 1


def torchvision_like(n_drop: int = 0, order=None):
    boxes = np.array([[5, 5, 40, 40], [60, 10, 90, 70], [0, 0, 20, 10]], np.float32)
    scores = np.array([0.95, 0.7, 0.3], np.float32)
    labels = np.array([3, 1, 3], np.int64)
    order = np.arange(3 - n_drop) if order is None else np.asarray(order)
    return [boxes[order], scores[order], labels[order]]


TV_KINDS = {
    "boxes": {"kind": "detections", "group": "dets", "field": "box"},
    "scores": {"kind": "detections", "group": "dets", "field": "score"},
    "labels": {"kind": "detections", "group": "dets", "field": "class"},
}


def test_torchvision_separate_outputs_variable_n():
    names = ["boxes", "scores", "labels"]
    rows = compare_outputs(names, torchvision_like(), torchvision_like(order=[2, 0, 1]), TV_KINDS, {})
    assert len(rows) == 1 and rows[0]["output"] == "dets" and rows[0]["passed"] and rows[0]["matched"] == 3
    rows = compare_outputs(names, torchvision_like(), torchvision_like(n_drop=1), TV_KINDS, {})
    assert not rows[0]["passed"] and rows[0]["unmatched_ref"] == 1


def test_rtmo_like_dets_and_keypoints_outputs():
    kinds = {
        "dets": {"kind": "detections", "group": "people", "box": [0, 4], "score": 4},
        "keypoints": {"kind": "detections", "group": "people", "field": "keypoints"},
    }
    rng = np.random.default_rng(0)
    dets = np.array([[[10, 10, 100, 200, 0.9], [300, 20, 380, 220, 0.8]]], np.float32)
    kpts = rng.uniform(0, 300, size=(1, 2, 17, 3)).astype(np.float32)
    shifted = kpts.copy()
    shifted[..., 0] += 12.0  # the rectangular-input bug: every keypoint offset in x
    ok = compare_outputs(["dets", "keypoints"], [dets, kpts], [dets, kpts.copy()], kinds, {})
    bad = compare_outputs(["dets", "keypoints"], [dets, kpts], [dets, shifted], kinds, {"keypoints_px": 2.0})
    assert ok[0]["passed"] and ok[0]["matched"] == 2
    assert not bad[0]["passed"] and bad[0]["keypoints_px_max"] == pytest.approx(12.0, abs=1e-3)
    assert "keypoints_px 2" in bad[0]["reason"]


def test_dispatcher_mixes_tensor_and_detection_outputs_with_per_output_tolerances():
    kinds = {"output0": POSE}
    proto_ref = np.ones((1, 4, 8, 8), np.float32)
    proto_got = proto_ref + 0.01
    rows = compare_outputs(
        ["output0", "output1"],
        [pose_rows(), proto_ref],
        [pose_rows(), proto_got],
        kinds,
        {"atol": {"": 1e-3, "output1": 0.02}, "box_px": {"output0": 0.5}},
    )
    by = {r["output"]: r for r in rows}
    assert by["output1"]["passed"] and by["output1"]["atol"] == 0.02
    assert by["output0"]["passed"] and by["output0"]["box_px"] == 0.5


def test_bad_kind_layout_is_a_failing_row_not_a_crash():
    kinds = {"o": {"kind": "detections", "box": [0, 2], "score": 2}}
    rows = compare_outputs(["o"], [np.zeros((2, 3))], [np.zeros((2, 3))], kinds, {})
    assert not rows[0]["passed"] and "box span [0, 2] must cover 4 columns" in rows[0]["reason"]
    rows = compare_outputs(["o"], [np.zeros(2)], [np.zeros(2)], {"o": {"kind": "heatmap"}}, {})
    assert not rows[0]["passed"] and "unknown output kind" in rows[0]["reason"]


def test_tensor_stats_and_failure_rule():
    ref = np.array([1.0, 100.0, 0.0, 5.0], np.float32)
    got = np.array([1.0005, 100.05, 0.0, np.nan], np.float32)
    row = compare_tensor("t", ref, got, atol=1e-3, rtol=1e-3)
    assert row["failed_elements"] == 1 and row["nonfinite"] == 1  # 100.05 is within rtol; NaN fails
    assert {"max_abs", "mean_abs", "median_abs", "p99_abs", "max_rel", "median_rel"} <= set(row)
    assert not compare_tensor("t", ref, got[:3], 1, 1)["passed"]


def test_resolve_defaults():
    assert resolve({}, "box_px", "x") == 1.0
    assert resolve({"atol": {"y": 2.0}}, "atol", "x") == 1e-3
    assert resolve({"atol": {"": 0.5}}, "atol", "x") == 0.5


def test_no_detections_on_both_sides_pass_and_one_sided_fail():
    empty = [np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)]
    names = ["boxes", "scores", "labels"]
    (row,) = compare_outputs(names, empty, [e.copy() for e in empty], TV_KINDS, {})
    assert row["passed"] and row["matched"] == 0
    (row,) = compare_outputs(names, torchvision_like(), empty, TV_KINDS, {})
    assert not row["passed"] and row["unmatched_ref"] == 3
