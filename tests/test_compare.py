"""recipekit.onnx.compare: tensor statistics and detection matching (numpy only, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from recipekit.onnx.compare import compare_detections, compare_outputs, compare_tensor, resolve
from recipekit.recipe.outputs import declare

POSE = declare({"o": {"kind": "detections", "box": [0, 4], "score": 4, "class": 5, "keypoints": [6, 2, 3]}})["o"]


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
    assert "field keypoints: 1 matched detection(s) beyond keypoints_px 1 px" in row["reason"]
    assert "worst: image 0 detection 1 (result row 1)" in row["reason"]


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
    assert not row["passed"] and "field score" in row["reason"] and "got nan" in row["reason"]


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


TV_KINDS = declare(
    {
        "boxes": {"kind": "detections", "group": "dets", "field": "box", "batched": False},
        "scores": {"kind": "detections", "group": "dets", "field": "score", "batched": False},
        "labels": {"kind": "detections", "group": "dets", "field": "class", "batched": False},
    }
)


def test_torchvision_separate_outputs_variable_n():
    names = ["boxes", "scores", "labels"]
    rows = compare_outputs(names, torchvision_like(), torchvision_like(order=[2, 0, 1]), TV_KINDS, {})
    assert len(rows) == 1 and rows[0]["output"] == "dets" and rows[0]["passed"] and rows[0]["matched"] == 3
    rows = compare_outputs(names, torchvision_like(), torchvision_like(n_drop=1), TV_KINDS, {})
    assert not rows[0]["passed"] and rows[0]["unmatched_ref"] == 1


def test_rtmo_like_dets_and_keypoints_outputs():
    kinds = declare(
        {
            "dets": {"kind": "detections", "group": "people", "box": [0, 4], "score": 4},
            "keypoints": {"kind": "detections", "group": "people", "field": "keypoints"},
        }
    )
    rng = np.random.default_rng(0)
    dets = np.array([[[10, 10, 100, 200, 0.9], [300, 20, 380, 220, 0.8]]], np.float32)
    kpts = rng.uniform(0, 300, size=(1, 2, 17, 3)).astype(np.float32)
    shifted = kpts.copy()
    shifted[..., 0] += 12.0  # the rectangular-input bug: every keypoint offset in x
    ok = compare_outputs(["dets", "keypoints"], [dets, kpts], [dets, kpts.copy()], kinds, {})
    bad = compare_outputs(["dets", "keypoints"], [dets, kpts], [dets, shifted], kinds, {"keypoints_px": 2.0})
    assert ok[0]["passed"] and ok[0]["matched"] == 2
    assert not bad[0]["passed"] and bad[0]["keypoints_px_max"] == pytest.approx(12.0, abs=1e-3)
    assert "keypoints_px 2 px" in bad[0]["reason"]


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
    kinds = declare({"o": {"kind": "detections", "box": [0, 4], "score": 4}})
    rows = compare_outputs(["o"], [np.zeros((1, 2, 3))], [np.zeros((1, 2, 3))], kinds, {})
    assert not rows[0]["passed"] and "box columns [0, 4) beyond the rows' 3 columns" in rows[0]["reason"]
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


# --- raw heads, per channel group --------------------------------------------------------------

from recipekit.recipe import outputs as sem  # noqa: E402


def raw_head(nc: int = 3, anchors: int = 50, extra: int = 0, seed: int = 0) -> np.ndarray:
    """(1, 4 + nc + extra, A) Ultralytics-like: cxcywh px, class probabilities (two confident anchors)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((1, 4 + nc + extra, anchors), np.float32)
    out[0, :2] = rng.uniform(20, 300, (2, anchors))
    out[0, 2:4] = rng.uniform(5, 60, (2, anchors))
    out[0, 4 : 4 + nc] = rng.uniform(0, 1e-4, (nc, anchors))
    out[0, 4, 7], out[0, 5, 30] = 0.9, 0.6
    out[0, 4 + nc :] = rng.normal(0, 1, (extra, anchors))
    return out


def detect_kind(nc: int = 3) -> dict:
    return sem.declare({"output0": sem.RawHead(groups=[sem.box(0, "cxcywh"), sem.class_scores(4, nc)])})["output0"]


def test_raw_head_box_off_by_2px_fails_naming_group_anchor_values_tolerance_unit():
    ref = raw_head()
    got = ref.copy()
    got[0, 2, 7] += 2.0  # the width of the best anchor
    (row,) = compare_outputs(["output0"], [ref], [got], {"output0": detect_kind()}, {})
    assert not row["passed"]
    reason = row["reason"]
    assert "output0 group box (channels 0-3, px)" in reason and "box_px 1 px" in reason
    assert "image 0 anchor 7 channel 2 (w)" in reason
    assert f"got {got[0, 2, 7]:.6g} vs reference {ref[0, 2, 7]:.6g}" in reason
    assert row["groups"]["box"]["failed"] == 1 and row["box_px_max"] == pytest.approx(2.0, abs=1e-4)


def test_raw_head_coordinates_of_candidates_below_min_score_are_not_compared_and_counted():
    ref = raw_head()
    got = ref.copy()
    ref[0, 4:7, 12] = 0.0  # anchor 12 scores 0 on both sides: never a detection
    got = ref.copy()
    got[0, 0, 12] += 50.0
    (row,) = compare_outputs(["output0"], [ref], [got], {"output0": detect_kind()}, {})
    assert row["passed"], row.get("reason")
    # only the 2 candidates >= 0.001 on at least one side are compared, never the best of ties at zero
    assert (row["min_score"], row["compared_candidates"], row["not_compared_below_min_score"]) == (0.001, 2, 48)
    (row,) = compare_outputs(["output0"], [ref], [got], {"output0": detect_kind()}, {"min_score": 0.0})
    assert not row["passed"] and "anchor 12" in row["reason"]
    got[0, 4, 12] = 0.5  # the result scores it: now it is compared on both sides' account
    (row,) = compare_outputs(["output0"], [ref], [got], {"output0": detect_kind()}, {})
    assert not row["passed"] and "group class_scores" in row["reason"] and "group box" in row["reason"]


def test_raw_head_probabilities_use_score_abs_and_pixels_box_px_per_group_keys():
    ref = raw_head()
    got = ref.copy()
    got[0, :4] += 0.3  # every coordinate 0.3 px off
    got[0, 4, 7] -= 0.005
    kinds = {"output0": detect_kind()}
    (row,) = compare_outputs(["output0"], [ref], [got], kinds, {})
    assert row["passed"], row.get("reason")
    (row,) = compare_outputs(["output0"], [ref], [got], kinds, {"box_px": {"output0/box": 0.1}})
    assert not row["passed"] and "box_px 0.1 px" in row["reason"]
    (row,) = compare_outputs(["output0"], [ref], [got], kinds, {"score_abs": 0.001})
    assert not row["passed"] and "group class_scores" in row["reason"] and "score_abs 0.001 abs" in row["reason"]


def test_pose_raw_head_keypoints_in_pixels_and_visibility():
    k = 2
    ref = raw_head(nc=1, extra=3 * k)
    ref[0, 5:] = np.abs(ref[0, 5:]) * 100
    kind = sem.declare(
        {"o": sem.RawHead(groups=[sem.box(0, "cxcywh"), sem.class_scores(4, 1), sem.keypoints(5, k, 3)])}
    )
    got = ref.copy()
    got[0, 5 + 3, 7] += 3.0  # keypoint 1 x of the best anchor
    (row,) = compare_outputs(["o"], [ref], [got], kind, {})
    assert not row["passed"] and "group keypoints" in row["reason"] and "keypoint 1 xy" in row["reason"]
    assert "keypoints_px 1 px" in row["reason"] and row["keypoints_px_max"] == pytest.approx(3.0, abs=1e-4)


def test_tolerance_layers_recipe_then_inherited_then_gate_default_then_kind_default_plus_margin():
    kind = detect_kind()
    layers = [{"box_px": {"output0/box": 0.2}}, {"box_px": 0.5, "score_abs": 0.05}, {"score_abs": 0.07, "atol": 0.3}]
    assert resolve(layers, "box_px", "output0", "box", kind) == 0.2
    assert resolve(layers, "box_px", "output1", None, kind) == 0.5
    assert resolve(layers, "score_abs", "output0", None, kind) == 0.05
    assert resolve(layers, "atol", "output0", None, kind) == 0.3
    assert resolve(layers, "min_score", "output0", None, kind) == 0.001  # raw-head default
    assert resolve([], "min_score", "dets", None, {"kind": "detections", "score_threshold": 0.25}) == 0.26
    assert resolve([*layers, {"margin": {"box_px": 1.0}}], "box_px", "output0", "box", kind) == pytest.approx(1.2)


def test_normalized_cxcywh_boxes_with_class_scores_compare_in_pixels():
    kind = sem.declare({"o": sem.Detections(columns=[sem.box(0, "cxcywh", unit="normalized"), sem.class_scores(4, 3)])})
    ref = np.zeros((1, 5, 7), np.float32)
    ref[0, 0] = [0.5, 0.5, 0.2, 0.4, 0.9, 0.05, 0.0]
    ref[0, 1] = [0.2, 0.3, 0.1, 0.1, 0.1, 0.02, 0.8]
    got = ref[:, [1, 0, 2, 3, 4]].copy()
    got[0, 1, 0] += 0.002  # 0.64 px at W=320
    (row,) = compare_outputs(["o"], [ref], [got], kind, {}, image_hw=(160, 320))
    assert row["passed"] and row["matched"] == 2 and row["box_px_max"] == pytest.approx(0.64, abs=1e-3)
    got[0, 1, 0] += 0.01
    (row,) = compare_outputs(["o"], [ref], [got], kind, {}, image_hw=(160, 320))
    assert not row["passed"] and "field box" in row["reason"] and "box_px 1 px" in row["reason"]
    (row,) = compare_outputs(["o"], [ref], [got], kind, {})
    assert not row["passed"] and "needs the input size" in row["reason"]


def test_obb_angle_compared_modulo_pi():
    kind = sem.declare(
        {"o": sem.Detections(columns=[sem.box(0, "cxcywh"), sem.score(4), sem.class_id(5), sem.angle(6)])}
    )
    ref = np.array([[[100, 100, 40, 20, 0.9, 1, 0.1]]], np.float32)
    got = ref.copy()
    got[0, 0, 6] = 0.1 + np.pi - 1e-4
    assert compare_outputs(["o"], [ref], [got], kind, {})[0]["passed"]
    got[0, 0, 6] = 0.2
    (row,) = compare_outputs(["o"], [ref], [got], kind, {})
    assert not row["passed"] and "field angle" in row["reason"] and "angle_rad 0.01 rad" in row["reason"]


def test_mask_coefficients_after_nms_are_compared():
    kind = sem.declare(
        {"o": sem.Detections(columns=[sem.box(0), sem.score(4), sem.class_id(5), sem.mask_coefficients(6, 4)])}
    )
    ref = np.zeros((1, 3, 10), np.float32)
    ref[0, 0] = [10, 10, 50, 60, 0.9, 0, 0.5, -1.0, 2.0, 0.1]
    got = ref.copy()
    assert compare_outputs(["o"], [ref], [got], kind, {})[0]["passed"]
    got[0, 0, 8] = 2.5
    (row,) = compare_outputs(["o"], [ref], [got], kind, {})
    assert (
        not row["passed"]
        and "field mask_coefficients" in row["reason"]
        and "atol=0.001 and rtol=0.001" in row["reason"]
    )


def seg_head(anchors: int = 40, nm: int = 4, hw: int = 16):
    rng = np.random.default_rng(3)
    head = raw_head(nc=2, anchors=anchors, extra=nm, seed=3)
    head[0, :2] = rng.uniform(20, 44, (2, anchors))
    head[0, 2:4] = rng.uniform(20, 40, (2, anchors))
    protos = rng.normal(0, 1, (1, nm, hw, hw)).astype(np.float32)
    kinds = sem.declare({"output0": sem.RawHead(groups=[sem.box(0, "cxcywh"), sem.class_scores(4, 2),
                                                        sem.mask_coefficients(6, nm)]),
                         "output1": sem.PrototypeMasks(coefficients="output0")})  # fmt: skip
    return head, protos, kinds


def test_prototype_masks_compared_as_mask_iou_after_decoding():
    head, protos, kinds = seg_head()
    names = ["output0", "output1"]
    noisy = protos + np.random.default_rng(1).normal(0, 0.01, protos.shape).astype(np.float32)
    rows = compare_outputs(names, [head, protos], [head, noisy], kinds, {}, image_hw=(64, 64))
    by = {r["output"]: r for r in rows}
    assert by["output1"]["passed"], by["output1"].get("reason")
    assert by["output1"]["decoded_masks"] == 2 and by["output1"]["mask_iou_min"] > 0.9
    wrong = protos[:, ::-1].copy()  # prototypes in another order: other masks
    by = {r["output"]: r for r in compare_outputs(names, [head, protos], [head, wrong], kinds, {}, image_hw=(64, 64))}
    assert not by["output1"]["passed"] and "below mask_iou 0.9 IoU" in by["output1"]["reason"]
    assert "image 0 anchor" in by["output1"]["reason"]


def test_instance_masks_of_matched_detections():
    kinds = sem.declare({n: sem.Detections(group="d", batch_axis=None, field=sem.whole(r)) for n, r in
                         (("boxes", "box"), ("scores", "score"), ("masks", "mask"))})  # fmt: skip
    boxes, scores = np.array([[0, 0, 8, 8]], np.float32), np.array([0.9], np.float32)
    masks = np.zeros((1, 1, 8, 8), np.float32)
    masks[0, 0, 2:6, 2:6] = 0.9
    moved = np.roll(masks, 3, axis=3)
    names = ["boxes", "scores", "masks"]
    assert compare_outputs(names, [boxes, scores, masks], [boxes, scores, masks.copy()], kinds, {})[0]["passed"]
    (row,) = compare_outputs(names, [boxes, scores, masks], [boxes, scores, moved], kinds, {})
    assert not row["passed"] and "field mask" in row["reason"] and "IoU 0.1" in row["reason"]


def test_class_scores_of_a_classifier():
    kind = sem.declare({"p": sem.ClassScores()})
    ref = np.array([[0.7, 0.2, 0.1]], np.float32)
    assert compare_outputs(["p"], [ref], [ref + 0.005], kind, {})[0]["passed"]
    (row,) = compare_outputs(["p"], [ref], [ref + [[0.0, 0.03, 0.0]]], kind, {})
    assert not row["passed"] and "score_abs 0.01 abs" in row["reason"] and "image 0 class 1" in row["reason"]


def rcnn_outputs(n: int, k: int = 17, hw: int = 32):
    """Mask/Keypoint R-CNN-shaped outputs of n detections (no batch axis), as the torchvision source exports."""
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, hw / 2, size=(n, 2))
    boxes = np.concatenate([xy, xy + hw / 3], axis=1).astype(np.float32)
    boxes[:, 0] += np.arange(n) * hw  # far apart: one match each
    scores = np.linspace(0.9, 0.5, n).astype(np.float32)
    labels = np.ones(n, np.int64)
    masks = np.zeros((n, 1, hw, hw), np.float32)
    masks[:, :, 4:20, 6:22] = 0.97
    kpts = np.concatenate([rng.uniform(0, hw, size=(n, k, 2)), np.ones((n, k, 1))], axis=2).astype(np.float32)
    return [boxes, scores, labels, masks, kpts, rng.normal(size=(n, k)).astype(np.float32)]


def test_rcnn_masks_and_keypoints_as_the_torchvision_source_declares_them():
    """Masks as mask IoU and keypoints in pixels; a moved mask or keypoint fails; zero detections compare."""
    from recipekit.sources.torchvision.export import output_kinds

    names = ["boxes", "scores", "labels", "masks", "keypoints", "keypoints_scores"]
    kinds = output_kinds(names, 0.25)
    ref = rcnn_outputs(3)
    (row,) = compare_outputs(names, ref, [a.copy() for a in ref], kinds, {})
    assert row["passed"] and row["matched"] == 3 and row["mask_iou_mean"] == 1.0 and row["keypoints_px_max"] == 0
    moved = [a.copy() for a in ref]
    moved[3][1] = np.roll(moved[3][1], 8, axis=-1)
    (row,) = compare_outputs(names, ref, moved, kinds, {})
    assert not row["passed"] and "field mask: 1 matched detection(s) beyond mask_iou 0.9 IoU" in row["reason"]
    moved = [a.copy() for a in ref]
    moved[4][2, 5, 1] += 3.0
    moved[5][2, 5] += 0.5  # another peak: another heatmap value
    (row,) = compare_outputs(names, ref, moved, kinds, {"keypoints_px": 2.0})
    assert not row["passed"] and "field keypoints: 1 matched detection(s) beyond keypoints_px 2 px" in row["reason"]
    assert row["keypoints_px_max"] == pytest.approx(3.0, abs=1e-4) and row["keypoint_ties"] == 0
    empty = rcnn_outputs(0)
    (row,) = compare_outputs(names, empty, [a.copy() for a in empty], kinds, {})
    assert row["passed"] and row["matched"] == 0


def test_keypoint_at_a_tied_heatmap_peak_is_a_tie_not_an_error():
    """One keypoint 16 px away at a peak of the same height (argmax between two near-equal maxima) passes,
    reported as a tie; a shift of many keypoints with their scores intact (a decoding error) fails."""
    from recipekit.sources.torchvision.export import output_kinds

    names = ["boxes", "scores", "labels", "keypoints", "keypoints_scores"]
    kinds = output_kinds(names, 0.25)
    ref = [a for k, a in enumerate(rcnn_outputs(3)) if k != 3]  # no masks
    tied = [a.copy() for a in ref]
    tied[3][1, 6, :2] += (-7.0, 15.0)
    tied[4][1, 6] += 5e-5
    (row,) = compare_outputs(names, ref, tied, kinds, {})
    assert row["passed"] and row["keypoint_ties"] == 1 and row["keypoints_compared"] == 51
    assert row["tie_examples"][0]["index"] == 1 and row["tie_examples"][0]["keypoint"] == 6
    assert row["keypoints_px_max"] == 0  # the tied keypoint is not a coordinate error
    shifted = [a.copy() for a in ref]
    shifted[3][..., 0] += 12.0  # every keypoint offset in x: scores unchanged
    (row,) = compare_outputs(names, ref, shifted, kinds, {})
    assert not row["passed"] and "keypoint_ties 51 > 1 (1% of 51 keypoints)" in row["reason"]


def test_near_duplicate_boxes_pair_with_their_twins():
    """Same-class near-duplicates (IoU 0.9 with each other, as NMS at 0.95 keeps them) in another order and
    with noise far below box_px still pair with their own twins (greedy by IoU over all pairs), so their
    scores compare; a missing twin leaves its reference unmatched instead of taking the neighbour's."""
    names = ["boxes", "scores", "labels"]
    boxes = np.array([[10, 10, 60, 60], [10, 10, 60, 55.5], [100, 20, 150, 90], [100, 20, 146, 90]], np.float32)
    ref = [boxes, np.array([0.9, 0.6, 0.8, 0.4], np.float32), np.array([3, 3, 5, 5], np.int64)]
    order = [3, 1, 0, 2]
    noise = np.random.default_rng(0).uniform(-0.05, 0.05, size=boxes.shape).astype(np.float32)
    got = [(boxes + noise)[order], ref[1][order], ref[2][order]]
    (row,) = compare_outputs(names, ref, got, TV_KINDS, {})
    assert row["passed"] and row["matched"] == 4 and row["score_abs_max"] == 0.0, row
    drop = [a[[0, 1, 3]] for a in got]  # the result without reference 0's twin (score 0.9)
    (row,) = compare_outputs(names, ref, drop, TV_KINDS, {})
    assert not row["passed"] and row["matched"] == 3 and row["unmatched_ref"] == 1, row
    assert row["unmatched_examples"]["ref"][0]["index"] == 0 and row["score_abs_max"] == 0.0
