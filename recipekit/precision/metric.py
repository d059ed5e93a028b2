"""The task metric the sensitivity pass and the search aim at: one function, the accuracy gate's measure.

`score` compares a candidate's outputs with a reference's over the same images the way the accuracy
gate does: detections decoded from the declared outputs, COCO mAP50-95 of each side's confident
detections as the truth for the other's (both directions, with the box counts they rest on), and,
given labels, both sides' mAP50-95 against them. This module is the only place the precision
package touches the gate's code (with `labelled_set`, which reads a labelled set as the gate
does), so a new metric API replaces `score`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


class NoTaskMetric(ValueError):
    """The outputs have no task metric here (no output is declared as detections or a raw head)."""


def score(
    names: list[str],
    kinds: dict[str, Any],
    hws: list[tuple[int, int]],
    options: dict[str, Any],
    reference: list[list[np.ndarray]],
    candidate: list[list[np.ndarray]],
    truth: list[Any] | None = None,
) -> dict[str, Any]:
    """Agreement of `candidate` with `reference` (per image: the outputs in `names` order).

    options: score_threshold (reference detections at this score are the truth), iou, max_det and
    min_score (raw-head decoding, as the accuracy gate). truth: per image the labelled boxes in input
    pixels (gates.accuracy.labels.in_input_pixels), or None.
    Returns agreement_map50_95 (the lower direction; None when neither side detects anything),
    reference_as_truth / artifact_as_truth (map50_95, pred_boxes), reference_boxes, artifact_boxes,
    score_shift; with truth also labelled: {reference, artifact, drop, truth_boxes}."""
    from recipekit.gates.accuracy.coco import box_map
    from recipekit.gates.accuracy.decode import NotDetections, detections
    from recipekit.gates.accuracy.gate import agreement

    nms = {k: options[k] for k in ("iou", "max_det", "min_score")}
    try:
        refs = [d for outs, hw in zip(reference, hws, strict=True) for d in detections(names, outs, kinds, hw, nms)]
        gots = [d for outs, hw in zip(candidate, hws, strict=True) for d in detections(names, outs, kinds, hw, nms)]
    except NotDetections as exc:
        raise NoTaskMetric(str(exc)) from None
    # coco.box_map takes one (H, W) for its image records (whatever the gate's annotation says); the
    # evaluation of boxes does not read it
    hw = hws[0] if hws else (0, 0)
    out = agreement(refs, gots, hw, options["score_threshold"])  # type: ignore[arg-type]
    out["score_shift"] = score_shift(refs, gots, options["score_threshold"])
    if truth is not None:
        r, a = box_map(truth, refs, hw), box_map(truth, gots, hw)
        drop = None if r["map50_95"] is None else round(r["map50_95"] - a["map50_95"], 4)
        out["labelled"] = {
            "reference": round(r["map50_95"], 4) if r["map50_95"] is not None else None,
            "artifact": round(a["map50_95"], 4) if a["map50_95"] is not None else None,
            "drop": drop,
            "truth_boxes": r["truth_boxes"],
        }
    return out


def _shift(a: Any, b: Any, thr: float) -> list[float]:
    """|score change| of each of a's detections at >= thr: to b's best same-class box at IoU >= 0.5, else to 0."""
    import numpy as np

    out = []
    for box, s, c in zip(a.box, a.score, a.cls, strict=True):
        if s < thr:
            continue
        same = b.cls == c
        if not same.any():
            out.append(float(s))
            continue
        other = b.box[same]
        lo, hi = np.maximum(other[:, :2], box[:2]), np.minimum(other[:, 2:], box[2:])
        inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
        union = np.prod(box[2:] - box[:2]) + np.prod(other[:, 2:] - other[:, :2], axis=1) - inter
        match = b.score[same][inter / np.maximum(union, 1e-9) >= 0.5]
        out.append(float(abs(s - match.max())) if len(match) else float(s))
    return out


def score_shift(refs: list[Any], gots: list[Any], thr: float) -> float | None:
    """How far the confident detections' scores moved, both ways (mean |change|; a lost box counts its
    whole score): a continuous companion of the agreement, which only moves when a box crosses `thr`,
    so the sensitivity table can rank blocks whose agreement ties."""
    shifts = [v for r, g in zip(refs, gots, strict=True) for v in _shift(r, g, thr) + _shift(g, r, thr)]
    return round(sum(shifts) / len(shifts), 5) if shifts else None


def labelled_set(recipe: Any, images: str, labels: str) -> tuple[list[np.ndarray], list[Any]]:
    """The labelled set (as gates.accuracy.labelled names it) preprocessed as the recipe says:
    batch-1 tensors, and per image the boxes in input pixels (the `truth` of `score`)."""
    from recipekit.gates.accuracy import labels as lab
    from recipekit.onnx import preprocess

    data = lab.load(recipe, images, labels)
    hw, pre = tuple(recipe.export.imgsz), recipe.input.preprocess
    tensors, truth = [], []
    for path, boxes, classes in zip(data.images, data.boxes, data.classes, strict=True):
        img, info = preprocess.resize(preprocess.read_image(path), hw, pre)
        tensors.append(preprocess.to_tensor(img, pre, recipe.input.dtype))
        truth.append(lab.in_input_pixels(boxes, classes, info))
    return tensors, truth


def options(recipe: Any) -> dict[str, Any]:
    """How the accuracy gate measures, as the recipe sets it (the recipe-wide gates.accuracy, else its
    defaults), and the labelled set when the goal is a drop against labels: the precision step's
    measure, part of its key."""
    from recipekit.core.errors import RecipeError
    from recipekit.gates.accuracy.gate import AccuracyConfig

    cfg = recipe.gates.get("accuracy") or AccuracyConfig()
    out = {k: getattr(cfg, k) for k in ("score_threshold", "iou", "max_det", "min_score")}
    goal = recipe.export.quantization.goal
    if goal is not None and goal.max_drop is not None:
        if cfg.labelled is None:
            raise RecipeError(
                recipe.origin or recipe.name,
                "export.quantization.goal.max_drop",
                "a drop against labels needs the labelled set in gates.accuracy.labelled (images, labels)",
            )
        out["labelled"] = cfg.labelled.model_dump(mode="json")
    return out


def labelled_files(recipe: Any, labelled: dict[str, str]) -> list[Any]:
    """The files of a labelled set (its images and its labels): their digests join the step's key."""
    from recipekit.gates.accuracy.gate import Accuracy, AccuracyConfig

    return Accuracy(AccuracyConfig(labelled=labelled)).input_files(recipe)
