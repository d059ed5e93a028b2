"""What the sensitivity pass and the search aim at, for every output kind (numpy only, fast): the accuracy
gate's task metric with its counts, judged by the gate's own rules, the headline bound raised by a goal."""

from __future__ import annotations

import numpy as np
import pytest

from recipekit.gates.accuracy.gate import AccuracyConfig
from recipekit.precision.evaluate import Aim
from recipekit.precision.metric import NoTaskMetric, failures, score
from recipekit.recipe import outputs as sem

MEASURE = {"score_threshold": 0.25, "iou": 0.7, "max_det": 300, "min_score": 0.001}
JUDGE = {k: getattr(AccuracyConfig().thresholds(), k) for k in ("min_agreement", "min_count_ratio", "min_items")}
JUDGE |= {k: getattr(AccuracyConfig().thresholds(), k) for k in ("min_iou", "max_mae", "min_top1", "min_top5")}
JUDGE |= {k: getattr(AccuracyConfig().thresholds(), k) for k in ("min_exact_match", "max_cer", "min_cosine")}
RNG = np.random.default_rng(0)


def head(n: int, score_: float, anchors: int = 40) -> np.ndarray:
    """A raw head (1, 4 + 1, A): n cxcywh px boxes scoring `score_`, the rest 0.001."""
    out = np.zeros((1, 5, anchors), np.float32)
    out[0, :2], out[0, 2:4], out[0, 4] = 200.0, 10.0, 0.001
    for k in range(n):
        out[0, :, k] = [20 + 30 * k, 30 + 17 * (k % 3), 20, 24, score_]
    return out


def ctc(labels: list[int], t: int = 32, classes: int = 12) -> np.ndarray:
    seq = [s for c in labels for s in (c, c, 0)]
    seq += [0] * (t - len(seq))
    p = np.full((1, t, classes), 0.01, np.float32)
    p[0, np.arange(t), seq] = 1 - 0.01 * (classes - 1)
    return p


def text_map() -> np.ndarray:
    m = RNG.uniform(0.0, 0.1, (1, 1, 32, 48)).astype(np.float32)
    m[0, 0, 4:10, 5:40], m[0, 0, 18:26, 8:30] = 0.9, 0.8
    return m


BOX = {"role": "box", "start": 0, "stop": 4, "format": "cxcywh"}
CASES = {  # kind -> (declaration, reference, a sound-looking but broken artifact, the kind's failure words)
    "raw_head": (
        {"kind": "raw_head", "groups": [BOX, {"role": "class_scores", "start": 4, "stop": 5}]},
        head(12, 0.8),
        head(12, 0.2),
        "artifact_as_truth: cannot be computed",
    ),
    "dense_map": ({"kind": "dense_map", "threshold": 0.5}, text_map(), text_map() * 0.5, "binarized map IoU 0"),
    "sequence": ({"kind": "sequence"}, ctc([3, 4, 5, 6, 7, 8]), ctc([3, 4, 9, 6, 7, 8]), "exact-match rate 0"),
    "class_scores": (
        {"kind": "class_scores"},
        np.array([[0.5, 0.2, 0.1, 0.08, 0.07, 0.05]], np.float32),
        np.array([[0.2, 0.5, 0.1, 0.08, 0.07, 0.05]], np.float32),
        "top-1 agreement 0",
    ),
    "embedding": ({"kind": "embedding"}, np.ones((1, 8), np.float32), -np.ones((1, 8), np.float32), "cosine"),
}


def scored(decl: dict, refs: list, gots: list) -> dict:
    kinds = sem.declare({"o": decl})
    return score(["o"], kinds, [(320, 320)] * len(refs), MEASURE, [[r] for r in refs], [[g] for g in gots])


@pytest.mark.parametrize("kind", list(CASES))
def test_every_kind_is_scored_with_counts_and_judged_by_the_gate_rules(kind):
    decl, ref, bad, words = CASES[kind]
    refs = [ref] * 2 if kind == "sequence" else [ref]  # 12 reference characters: exercised
    sound = scored(decl, refs, refs)
    task = sound["tasks"]["o"]
    assert sound["agreement"] == 1.0 and task["reference_items"] >= 1 and len(task["per_image"]) >= 1
    assert failures(sound, JUDGE) == [] and sound["drift"] in (0.0, None)
    broken = scored(decl, refs, [bad] * len(refs))
    found = failures(broken, JUDGE)
    assert any(words in f for f in found), found  # in the kind's own units, naming what it rests on
    assert broken["drift"] is None or broken["drift"] > 0


def test_a_goal_raises_the_headline_bound_and_keeps_the_gate_rules():
    ref = head(12, 0.8)
    shifted = ref.copy()
    shifted[0, 0, :1] += 2.0  # one box moved 2 px: agreement between the gate's 0.8 and a goal of 0.99
    figs = scored(CASES["raw_head"][0], [ref], [shifted])
    assert 0.8 <= figs["agreement"] < 0.99
    assert failures(figs, JUDGE) == []
    (why,) = failures(figs, JUDGE, min_agreement=0.99)
    assert why.startswith("o: mAP50-95 agreement 0.") and "< min_agreement 0.99 (on 12 reference detections" in why
    few = scored(CASES["raw_head"][0], [head(3, 0.8)], [head(3, 0.8)])  # 3 detections: nothing to judge a goal on
    assert failures(few, JUDGE, min_agreement=0.5) == [
        "o: not exercised: 3 reference detections at >= score_threshold over 1 image(s), fewer than min_items 10"
    ]


def test_far_fewer_confident_detections_fail_a_goal_the_map_alone_would_meet():
    """mAP agreement forgives detections that fall just under the threshold (they still rank as
    predictions); the count rule of the gate does not: the goal is judged with it."""
    ref, got = head(12, 0.8), head(12, 0.8)
    got[0, 4, 4:] = 0.2  # 8 of 12 fall under 0.25, still the best-ranked boxes
    figs = scored(CASES["raw_head"][0], [ref], [got])
    assert figs["tasks"]["o"]["directions"]["reference_as_truth"]["map50_95"] == 1.0
    assert any("count ratio 0.33 < min_count_ratio 0.5" in f for f in failures(figs, JUDGE, min_agreement=0.3))


def test_a_drop_goal_fails_when_the_drop_cannot_be_computed_or_is_too_large():
    aim = Aim(JUDGE, None, 0.01)
    figs = scored(CASES["raw_head"][0], [head(12, 0.8)], [head(12, 0.8)])
    assert aim.failures({**figs, "labelled": {"why": "no detector"}}, None) == [
        "labelled set: mAP50-95 drop cannot be computed (no detector)"
    ]
    lab = {"reference": 0.8, "artifact": 0.7, "truth_boxes": 30}
    assert aim.failures({**figs, "labelled": lab}, 0.1)[0].startswith("labelled set: mAP50-95 drop 0.1000 > max_drop")


def test_outputs_without_a_task_metric_say_so():
    with pytest.raises(NoTaskMetric, match="no output of \\['o'\\] is declared with a task metric"):
        scored({"kind": "tensor"}, [np.zeros((1, 4))], [np.zeros((1, 4))])
