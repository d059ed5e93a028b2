"""Output kinds beyond detections (dense maps, sequences, embeddings, per-level heads), their shape rules,
and the accuracy gate's task metrics with their counts (numpy only, fast).

Each kind passes a sound artifact and fails a copy with one perturbed element or region, the message
naming it in the kind's own units; a declaration that does not fit the output is refused with why."""

from __future__ import annotations

import numpy as np
import pytest

from recipekit.gates.accuracy.metrics import Options, Task, Thresholds, judge, metric, tasks
from recipekit.onnx.compare import compare_outputs, shape_problems
from recipekit.onnx.compare.level_heads import decode
from recipekit.recipe import outputs as sem

RNG = np.random.default_rng(0)


def one(kind_decl: dict, ref: np.ndarray, got: np.ndarray, tol: dict | None = None) -> dict:
    kinds = sem.declare({"o": kind_decl})
    (row,) = compare_outputs(["o"], [ref], [got], kinds, tol or {})
    return row


def scored(kind: str, decl: dict, refs: list, gots: list, th: Thresholds | None = None, **opt) -> tuple[dict, list]:
    kinds = sem.declare({"o": decl})
    task = Task("o", kind, ("o",))
    figs = metric(task, [{"o": r} for r in refs], [{"o": g} for g in gots], Options(kinds=kinds, **opt))
    return figs, judge(task, figs, th or Thresholds())


# --- dense maps ---------------------------------------------------------------------------------


def text_map(h: int = 32, w: int = 48) -> np.ndarray:
    """(1, 1, H, W) probabilities: two 'text lines' of high probability on a low background."""
    m = RNG.uniform(0.0, 0.1, (1, 1, h, w)).astype(np.float32)
    m[0, 0, 4:10, 5:40] = 0.9
    m[0, 0, 18:26, 8:30] = 0.8
    return m


def test_dense_binary_map_one_pixel_off_fails_naming_the_pixel_in_probability():
    ref = text_map()
    decl = {"kind": "dense_map", "classes": "binary", "threshold": 0.3}
    assert one(decl, ref, ref + 0.004)["passed"]
    got = ref.copy()
    got[0, 0, 7, 12] -= 0.2
    row = one(decl, ref, got)
    assert not row["passed"] and "score_abs 0.01 abs" in row["reason"]
    assert "image 0 channel 0 pixel (y 7, x 12)" in row["reason"] and row["map_iou"] == 1.0


def test_dense_per_pixel_class_logits_use_atol_and_name_the_class():
    ref = RNG.normal(0, 2, (1, 4, 16, 16)).astype(np.float32)
    decl = {"kind": "dense_map", "classes": "per_pixel", "unit": "logit"}
    assert one(decl, ref, ref + 1e-5)["passed"]
    got = ref.copy()
    got[0, 2, 3, 9] += 0.5
    row = one(decl, ref, got)
    assert not row["passed"] and "atol=0.001 and rtol=0.001" in row["reason"]
    assert "image 0 class 2 pixel (y 3, x 9)" in row["reason"]


def test_dense_metric_iou_and_mae_fail_on_a_perturbed_region_with_counts():
    ref = text_map()
    decl = {"kind": "dense_map", "threshold": 0.3}
    figs, failures = scored("dense_map", decl, [ref, ref], [ref + 0.01, ref])
    assert not failures and figs["value"] == 1.0 and figs["mae"] == pytest.approx(0.005, abs=1e-4)
    assert [p["reference_items"] for p in figs["per_image"]] == [386, 386] and figs["reference_items"] == 772
    got = ref.copy()
    got[0, 0, 4:10, 5:40] = 0.05  # one text line lost
    figs, failures = scored("dense_map", decl, [ref], [got])
    assert figs["per_image"][0]["artifact_items"] == 176 and figs["value"] == pytest.approx(176 / 386)
    why = "binarized map IoU 0.456 < min_iou 0.8 (on 386 reference foreground pixels over 1 image(s))"
    assert any(why in f for f in failures), failures


def test_dense_metric_too_few_foreground_pixels_is_not_exercised():
    ref = np.zeros((1, 1, 16, 16), np.float32)
    ref[0, 0, 2:4, 2:6] = 0.9  # 8 foreground pixels
    figs, failures = scored("dense_map", {"kind": "dense_map"}, [ref], [ref])
    assert failures == ["o: not exercised: 8 reference foreground pixels over 1 image(s), fewer than min_items 100"]


# --- sequences (CTC) -------------------------------------------------------------------------------


def ctc_probs(labels: list[int], t: int = 32, classes: int = 12, blank: int = 0) -> np.ndarray:
    """(1, T, C) softmax-like scores whose greedy decoding is `labels` (blanks between repeats)."""
    seq = []
    for c in labels:
        seq += [c, c, blank]
    seq += [blank] * (t - len(seq))
    p = np.full((1, t, classes), 0.01, np.float32)
    p[0, np.arange(t), seq] = 1 - 0.01 * (classes - 1)
    return p


def test_sequence_one_step_off_fails_naming_time_step_and_class():
    ref = ctc_probs([3, 5, 5, 7])
    decl = {"kind": "sequence", "blank": 0}
    row = one(decl, ref, ref)
    assert row["passed"] and row["decoded_equal"] == 1 and row["characters_ref"] == 4
    got = ref.copy()
    got[0, 4, 5] -= 0.3
    got[0, 4, 9] += 0.3
    row = one(decl, ref, got)
    assert (
        not row["passed"] and "image 0 time step 4 class 5" in row["reason"] and "score_abs 0.01 abs" in row["reason"]
    )


def test_sequence_metric_exact_match_and_cer_with_counts():
    refs = [ctc_probs([3, 5, 5, 7]), ctc_probs([1, 2, 3, 4, 6, 8])]
    figs, failures = scored("sequence", {"kind": "sequence"}, refs, refs)
    assert not failures and figs["value"] == 1.0 and figs["cer"] == 0.0 and figs["reference_items"] == 10
    got = [refs[0], ctc_probs([1, 2, 9, 4, 6, 8])]  # one character wrong
    figs, failures = scored("sequence", {"kind": "sequence"}, refs, got)
    assert figs["value"] == 0.5 and figs["cer"] == pytest.approx(0.1)
    assert [p["edits"] for p in figs["per_image"]] == [0, 1]
    assert failures == ["o: exact-match rate 0.5 < min_exact_match 0.8 (on 10 reference characters over 2 image(s))"]


def test_sequence_time_first_layout():
    ref = ctc_probs([2, 4, 6, 8, 10, 3, 5, 7, 9, 11])
    tbc = np.ascontiguousarray(ref.transpose(1, 0, 2))
    figs, failures = scored("sequence", {"kind": "sequence", "time_axis": 0}, [tbc], [tbc])
    assert not failures and figs["reference_items"] == 10
    got = tbc.copy()
    got[6, 0, 4] -= 0.5
    row = one({"kind": "sequence", "time_axis": 0}, tbc, got)
    assert "image 0 time step 6 class 4" in row["reason"]


# --- embeddings -------------------------------------------------------------------------------------


def test_embedding_cosine_one_element_off_fails_naming_image_and_element():
    ref = RNG.normal(0, 1, (2, 64)).astype(np.float32)
    assert one({"kind": "embedding"}, ref, ref * 1.5 + 1e-4)["passed"]  # same direction
    got = ref.copy()
    got[1, 17] += 6.0
    row = one({"kind": "embedding"}, ref, got)
    assert not row["passed"] and "below cosine 0.999 cosine similarity" in row["reason"]
    assert "image 1" in row["reason"] and "element 17" in row["reason"]
    figs, failures = scored("embedding", {"kind": "embedding"}, [ref], [got])
    assert figs["reference_items"] == 2 and figs["cosine_min"] == pytest.approx(row["cosine_min"])
    assert [p["cosine"] == pytest.approx(1.0) for p in figs["per_image"]] == [True, False]
    assert failures == [f"o: cosine similarity {figs['value']:.4g} < min_cosine 0.98 (on 2 vectors over 1 image(s))"]


# --- per-level heads -----------------------------------------------------------------------------


def dfl_levels(nc: int = 3, bins: int = 4, size: int = 32) -> tuple[list[np.ndarray], dict]:
    """YOLOv8-style split head at strides 8 and 16: (1, 4*bins + nc, H, W) logits per level, one confident cell."""
    outs, kinds = [], {}
    for k, s in enumerate((8, 16)):
        h = size // s
        x = RNG.normal(0, 1, (1, 4 * bins + nc, h, h)).astype(np.float32)
        x[0, 4 * bins :] = -8.0  # class logits: nothing
        outs.append(x)
        kinds[f"p{k}"] = sem.LevelHead(
            stride=s, decoder="dfl", groups=[sem.box_distribution(0, bins), sem.class_scores(4 * bins, nc, "logit")]
        )
    outs[0][0, 4 * bins + 1, 2, 3] = 4.0  # stride 8, cell (y 2, x 3): class 1
    return outs, sem.declare(kinds)


def test_dfl_level_head_decodes_like_ultralytics_and_a_bin_off_names_the_cell():
    outs, kinds = dfl_levels()
    cands, where = decode({"p0": outs[0], "p1": outs[1]}, kinds, (32, 32))
    assert cands.shape == (1, 16 + 4, 4 + 3) and where[2 * 4 + 3] == (8, 2, 3)
    d = outs[0][0, :16, 2, 3].reshape(4, 4)
    e = np.exp(d - d.max(axis=1, keepdims=True))
    ltrb = (e / e.sum(axis=1, keepdims=True) * np.arange(4)).sum(axis=1) * 8
    cx, cy = 3.5 * 8, 2.5 * 8
    assert cands[0, 11, :4] == pytest.approx([cx - ltrb[0], cy - ltrb[1], cx + ltrb[2], cy + ltrb[3]], abs=1e-4)
    rows = compare_outputs(["p0", "p1"], outs, [o.copy() for o in outs], kinds, {}, (32, 32))
    assert [r["output"] for r in rows] == ["head"] and rows[0]["passed"] and rows[0]["compared_candidates"] == 1
    bad = [o.copy() for o in outs]
    bad[0][0, 2, 2, 3] += 3.0  # one bin of the left distance
    (row,) = compare_outputs(["p0", "p1"], outs, bad, kinds, {}, (32, 32))
    assert not row["passed"] and "stride 8 cell (y 2, x 3)" in row["reason"] and "box_px 1 px" in row["reason"]


def test_yolox_objectness_times_class_and_nlc_layout():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.1, (1, 16, 4 + 1 + 2)).astype(np.float32)  # stride 8 at 32x32: 4x4 cells, nlc
    x[0, :, 4:] = -9.0
    x[0, 5, 4], x[0, 5, 6] = 3.0, 2.0  # cell (y 1, x 1): objectness and class 1
    kinds = sem.declare(
        {
            "o": sem.LevelHead(
                stride=8,
                layout="nlc",
                decoder="yolox",
                groups=[sem.box_offsets(0), sem.objectness(4), sem.class_scores(5, 2, "logit")],
            )
        }
    )
    cands, _ = decode({"o": x}, kinds, (32, 32))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    assert cands[0, 5, 5] == pytest.approx(sig(3.0) * sig(2.0))
    w = np.exp(x[0, 5, 2]) * 8
    assert cands[0, 5, 0] == pytest.approx((1 + x[0, 5, 0]) * 8 - w / 2, abs=1e-4)
    (row,) = compare_outputs(["o"], [x], [x.copy()], kinds, {}, (32, 32))
    assert row["passed"] and row["kind"] == "level_head"


def test_level_head_declarations_are_checked_across_outputs():
    with pytest.raises(ValueError, match="stride 16 needs box_distribution, class_scores"):
        sem.declare(
            {
                "a": sem.LevelHead(
                    stride=8, decoder="dfl", groups=[sem.box_distribution(0, 4), sem.class_scores(16, 2)]
                ),
                "b": sem.LevelHead(stride=16, decoder="dfl", groups=[sem.class_scores(0, 2)]),
            }
        )
    with pytest.raises(ValueError, match="decoder dfl reads"):
        sem.declare({"a": sem.LevelHead(stride=8, decoder="dfl", groups=[sem.box_offsets(0), sem.class_scores(4, 2)])})


# --- shape rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decl", "dims", "why"),
    [
        ({"kind": "class_scores"}, [1, 40, 6625], "a (batch, time, classes) output is a `sequence`"),
        ({"kind": "sequence"}, [1, 6625], "a sequence is (batch, time, classes), but the output has rank 2"),
        ({"kind": "dense_map"}, [1, 3, 64, 64], "a binary map has 1 channel, the output has 3"),
        ({"kind": "dense_map", "classes": "per_pixel"}, [1, 1, 64, 64], "per-pixel classes need 2 or more"),
        ({"kind": "embedding"}, [1, 512, 7, 7], "an embedding is (batch, dims)"),
        (
            {
                "kind": "raw_head",
                "groups": [{"role": "box", "start": 0, "stop": 4}, {"role": "class_scores", "start": 4, "stop": 84}],
            },
            [1, 22, 2100],
            "its channel axis has 22 channels, the declared groups need 84",
        ),
    ],
)
def test_a_declaration_that_does_not_fit_the_output_says_why(decl, dims, why):
    kinds = sem.declare({"o": decl})
    ((name, got),) = shape_problems(kinds, {"o": dims})
    assert name == "o" and why in got
    unknown = shape_problems(kinds, {"o": [None] * len(dims)})  # dynamic dims: only the rank can misfit
    assert bool(unknown) == ("rank" in got)


# --- detections: the task metric and its counts ------------------------------------------------------


def head_with(boxes: list[tuple[float, float, float, float, float]], anchors: int = 40) -> np.ndarray:
    """A raw head (1, 4 + 1, A): cxcywh px boxes with one class probability; the rest score 0.001."""
    out = np.zeros((1, 5, anchors), np.float32)
    out[0, :2] = 200.0
    out[0, 2:4] = 10.0
    out[0, 4] = 0.001
    for k, (cx, cy, w, h, s) in enumerate(boxes):
        out[0, :, k] = [cx, cy, w, h, s]
    return out


BOX = {"role": "box", "start": 0, "stop": 4, "format": "cxcywh"}
HEAD = {"kind": "raw_head", "groups": [BOX, {"role": "class_scores", "start": 4, "stop": 5}]}


def boxes(n: int, score: float, shift: float = 0.0) -> list[tuple[float, float, float, float, float]]:
    return [(20 + 30 * k + shift, 30 + 17 * (k % 3), 20, 24, score) for k in range(n)]


def test_an_int8_detector_whose_boxes_all_fall_under_the_threshold_fails():
    """The false pass: a reference with confident boxes, an artifact whose boxes all score under 0.25.
    The reverse direction cannot be computed: that is a failure, never dropped."""
    ref, got = head_with(boxes(12, 0.8)), head_with(boxes(12, 0.2))
    figs, failures = scored("raw_head", HEAD, [ref], [got], image_hw=(320, 320))
    assert figs["directions"]["reference_as_truth"]["map50_95"] == 1.0  # its low boxes still "match" forward
    assert figs["directions"]["artifact_as_truth"]["map50_95"] is None and figs["value"] is None
    assert figs["per_image"] == [{"image": 0, "reference_items": 12, "artifact_items": 0}]
    assert any(
        "artifact_as_truth: cannot be computed: the artifact has no detection at score >= 0.25" in f for f in failures
    )


def test_too_few_reference_detections_is_not_exercised():
    ref = head_with(boxes(2, 0.8))
    figs, failures = scored("raw_head", HEAD, [ref], [ref], image_hw=(320, 320))
    assert figs["value"] == 1.0
    assert failures == [
        "o: not exercised: 2 reference detections at >= score_threshold over 1 image(s), fewer than min_items 10"
    ]
    figs, failures = scored("raw_head", HEAD, [ref], [ref], Thresholds(min_items={"": 2}), image_hw=(320, 320))
    assert not failures


def test_far_fewer_confident_detections_than_the_reference_fail():
    ref = head_with(boxes(12, 0.8))
    got = head_with(boxes(4, 0.8) + boxes(12, 0.2)[4:])
    figs, failures = scored("raw_head", HEAD, [ref, ref], [ref, got], image_hw=(320, 320))
    assert [p["artifact_items"] for p in figs["per_image"]] == [12, 4]
    assert not any("count ratio" in f for f in failures)  # 16 of 24 over both images
    assert figs["reference_items"] == 24 and figs["artifact_items"] == 16
    figs, failures = scored("raw_head", HEAD, [ref], [got], image_hw=(320, 320))
    assert any("count ratio 0.33 < min_count_ratio 0.5" in f for f in failures), failures


def test_class_scores_top1_top5_with_counts():
    ref = np.array([[0.5, 0.2, 0.1, 0.08, 0.07, 0.05], [0.1, 0.6, 0.1, 0.1, 0.05, 0.05]], np.float32)
    figs, failures = scored("class_scores", {"kind": "class_scores"}, [ref], [ref])
    assert figs["value"] == 1.0 and figs["top5"] == 1.0 and figs["reference_items"] == 2 and not failures
    got = ref[:, [1, 0, 2, 3, 4, 5]]
    figs, failures = scored("class_scores", {"kind": "class_scores"}, [ref], [got])
    assert figs["value"] == 0.0 and failures[0] == "o: top-1 agreement 0 < min_top1 0.8 (on 2 images over 1 image(s))"


def test_tasks_of_a_model():
    kinds = sem.declare(
        {
            "dets": {"kind": "detections", "group": "g", "field": {"role": "box"}, "batch_axis": None},
            "scores": {"kind": "detections", "group": "g", "field": {"role": "score"}, "batch_axis": None},
            "map": {"kind": "dense_map"},
            "feat": {"kind": "tensor"},
        }
    )
    assert [(t.name, t.kind, t.outputs) for t in tasks(list(kinds), kinds)] == [
        ("g", "detections", ("dets", "scores")),
        ("map", "dense_map", ("map",)),
    ]


# --- detections: zero-score ties and a reference at its cap --------------------------------------------


def test_zero_score_detections_are_never_compared():
    """RT-DETR's 300 queries: most score ~0 on both sides and never match; they are not detections."""
    kind = sem.declare({"o": {"kind": "detections", "columns": [sem.box(0), sem.score(4), sem.class_id(5)]}})
    ref = np.zeros((1, 300, 6), np.float32)
    ref[0, :, :4] = RNG.uniform(0, 300, (300, 4))
    ref[0, :, 2:4] = ref[0, :, :2] + 20
    ref[0, :, 4] = RNG.uniform(0, 5e-4, 300)
    ref[0, :3, 4] = 0.9
    got = ref.copy()
    got[0, 3:, :4] = got[0, 3:, :4][::-1]  # the near-zero queries land elsewhere
    (row,) = compare_outputs(["o"], [ref], [got], kind, {})
    assert row["passed"], row.get("reason")
    assert row["matched"] == 3 and row["ignored_below_min_score"] > 500


def test_a_reference_at_its_detection_cap_is_compared_clear_of_the_cut():
    cols = [sem.box(0), sem.score(4), sem.class_id(5)]
    kind = sem.declare({"o": sem.Detections(columns=cols, max_detections=10)})
    ref = np.zeros((1, 10, 6), np.float32)
    for k in range(10):
        ref[0, k] = [10 + 25 * k, 10, 30 + 25 * k, 40, 0.9 - 0.05 * k, 0]
    got = ref.copy()
    got[0, 9] = [400, 400, 420, 420, 0.46, 0]  # the last one cut differently (0.45 in the reference)
    (row,) = compare_outputs(["o"], [ref], [got], kind, {})
    assert row["passed"], row.get("reason")
    assert row["images_at_cap"] == 1 and row["at_cap"][0]["left_out_near_cut"] == 2
    capless = sem.declare({"o": sem.Detections(columns=cols)})
    assert not compare_outputs(["o"], [ref], [got], capless, {})[0]["passed"]
