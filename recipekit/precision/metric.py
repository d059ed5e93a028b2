"""The task metric the sensitivity pass and the search aim at: the accuracy gate's, for every output kind.

`score` runs the gate's task metrics (recipekit.gates.accuracy.metrics: `tasks`, `metric`) over a
candidate's and a reference's outputs on the same images: every task the declared outputs make (a
detector, a dense map, class scores, a sequence, an embedding), with its figures and the items they
rest on, per image and per direction. `failures` judges them with the gate's own rules (`judge`:
`not exercised` below min_items, a direction that cannot be computed fails, a detector whose
artifact keeps far fewer confident detections than its reference fails, every bound), the headline
bounds raised to a goal's `min_agreement`. The headline, the one figure a goal names, per kind:
detections the lower mAP50-95 agreement of the two directions, dense maps the binarized map's IoU,
class scores top-1 agreement, sequences the exact-match rate, embeddings the mean cosine. Beside it,
`drift` moves continuously where the headline moves in steps (a box crossing the threshold, a
decoded word changing): detectors the mean |change| of the confident detections' scores, the other
kinds the outputs' mean absolute change relative to the reference's mean magnitude; the sensitivity
table ranks blocks whose headline ties by it.

This module and `labelled_set` are the only places the precision package touches the gate's code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MEASURE = ("score_threshold", "iou", "max_det", "min_score")
"""How the gate measures (the precision step's key holds them)."""
THRESHOLDS = ("min_agreement", "min_count_ratio", "min_iou", "max_mae", "min_top1", "min_top5")
THRESHOLDS += ("min_exact_match", "max_cer", "min_cosine", "min_items")
HEADLINE = {
    "detections": "min_agreement",
    "dense_map": "min_iou",
    "class_scores": "min_top1",
    "sequence": "min_exact_match",
    "embedding": "min_cosine",
}
"""The gate's bound on each kind's headline figure: a goal's min_agreement raises it."""


class NoTaskMetric(ValueError):
    """No declared output has a task metric (only tensors): nothing to rank nodes by."""


def _tasks(names: list[str], kinds: dict[str, Any]) -> list[Any]:
    from recipekit.gates.accuracy.metrics import tasks

    found = tasks(names, kinds)
    if not found:
        raise NoTaskMetric(
            f"no output of {names} is declared with a task metric (source.output_kinds: raw_head, level_head, "
            "detections, dense_map, class_scores, sequence or embedding)"
        )
    return found


def score(
    names: list[str],
    kinds: dict[str, Any],
    hws: list[tuple[int, int]],
    options: dict[str, Any],
    reference: list[list[np.ndarray]],
    candidate: list[list[np.ndarray]],
    truth: list[Any] | None = None,
) -> dict[str, Any]:
    """`candidate` against `reference` (per image: the outputs in `names` order), as the gate measures.

    options: the gate's score_threshold, iou, max_det and min_score. hws: each image's input (H, W).
    truth: per image the labelled boxes in input pixels (gates.accuracy.labels.in_input_pixels), or None.
    Returns `tasks` (name -> the gate's figures), `agreement` (the worst headline; None when one cannot
    be computed), `drift`, and with truth `labelled`: {reference, artifact, drop, truth_boxes}."""
    from recipekit.gates.accuracy.metrics import Options, metric

    found = _tasks(names, kinds)
    refs = [dict(zip(names, outs, strict=True)) for outs in reference]
    gots = [dict(zip(names, outs, strict=True)) for outs in candidate]
    opts = Options(list(hws), **{k: options[k] for k in MEASURE}, kinds=dict(kinds))
    figures, drifts = {}, []
    for task in found:
        figures[task.name] = metric(task, refs, gots, opts)
        drifts.append(_drift(task, refs, gots, opts))
    heads = [f["value"] for f in figures.values()]
    out: dict[str, Any] = {
        "tasks": figures,
        "agreement": None if None in heads else round(min(heads), 4),
        "drift": max((d for d in drifts if d is not None), default=None),
    }
    if truth is not None:
        out["labelled"] = _labelled(found, refs, gots, truth, opts)
    return out


def _detections(task: Any, entries: list[dict[str, Any]], opts: Any) -> list[Any]:
    from recipekit.gates.accuracy.decode import task_detections

    cfg = {"iou": opts.iou, "max_det": opts.max_det, "min_score": opts.min_score}
    kinds = {n: opts.kinds[n] for n in task.outputs}
    return [
        d
        for k, e in enumerate(entries)
        for d in task_detections(task.kind, {n: e[n] for n in task.outputs}, kinds, opts.hw(k), cfg)
    ]


def _drift(task: Any, refs: list[dict], gots: list[dict], opts: Any) -> float | None:
    import numpy as np

    if task.family == "detections":
        return score_shift(_detections(task, refs, opts), _detections(task, gots, opts), opts.score_threshold)
    diff = scale = 0.0
    for r, g in zip(refs, gots, strict=True):
        for n in task.outputs:
            rv, gv = np.asarray(r[n], np.float64), np.asarray(g[n], np.float64)
            diff, scale = diff + float(np.abs(gv - rv).sum()), scale + float(np.abs(rv).sum())
    return round(diff / scale, 6) if scale > 0 else None


def _labelled(found: list[Any], refs: list[dict], gots: list[dict], truth: list[Any], opts: Any) -> dict[str, Any]:
    """Both sides' mAP50-95 against the labels (the first detector's detections)."""
    from recipekit.gates.accuracy.coco import box_map
    from recipekit.gates.accuracy.metrics import DETECTORS

    task = next((t for t in found if t.kind in DETECTORS), None)
    if task is None:
        return {"reference": None, "artifact": None, "drop": None, "truth_boxes": 0, "why": "no detector"}
    hws = [opts.hw(k) for k in range(len(truth))]
    r = box_map(truth, _detections(task, refs, opts), hws)
    a = box_map(truth, _detections(task, gots, opts), hws)
    drop = None if r["map50_95"] is None else round(r["map50_95"] - a["map50_95"], 4)
    return {
        "reference": None if r["map50_95"] is None else round(r["map50_95"], 4),
        "artifact": None if a["map50_95"] is None else round(a["map50_95"], 4),
        "drop": drop,
        "truth_boxes": r["truth_boxes"],
    }


def failures(figures: dict[str, Any], judging: dict[str, Any], min_agreement: float | None = None) -> list[str]:
    """The gate's verdict on `score`'s figures (its `judge`, thresholds `judging`), every headline bound
    at least `min_agreement`: an empty list is a pass."""
    from recipekit.gates.accuracy.metrics import Task, Thresholds, judge

    th = Thresholds(**{k: v for k, v in judging.items() if k in THRESHOLDS})
    if min_agreement is not None:
        for bound in HEADLINE.values():
            setattr(th, bound, max(getattr(th, bound), min_agreement))
    return [p for name, f in figures["tasks"].items() for p in judge(Task(name, f["kind"], ()), f, th)]


def summary(figures: dict[str, Any]) -> dict[str, Any]:
    """What a figure rests on, short (the table's rows, the search's trials, the manifest): per task its
    headline and items on both sides; a detector its two directions with their truth counts."""
    out: dict[str, Any] = {}
    for name, f in figures["tasks"].items():
        row = {"metric": f["metric"], "value": f["value"]}
        row.update(reference_items=f["reference_items"], artifact_items=f["artifact_items"])
        if "directions" in f:
            row["directions"] = {k: [d["map50_95"], d["truth_items"]] for k, d in f["directions"].items()}
        out[name] = row
    return out


def rests_on(figures: dict[str, Any]) -> str:
    """'29 reference detections at >= score_threshold over 30 images' (each task's items)."""
    from recipekit.gates.accuracy.metrics import ITEMS, Task

    parts = []
    for name, f in figures["tasks"].items():
        images = len({p["image"] for p in f["per_image"]})
        what = ITEMS[Task(name, f["kind"], ()).family]
        parts.append(f"{f['reference_items']} {what} over {images} image(s)")
    return "; ".join(parts)


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
    whole score): a continuous companion of the agreement, which only moves when a box crosses `thr`."""
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
        tensors.append(preprocess.to_tensor(img, pre, recipe.input.dtype, info["inside"]))
        truth.append(lab.in_input_pixels(boxes, classes, info))
    return tensors, truth


def options(recipe: Any) -> dict[str, Any]:
    """How the accuracy gate measures and judges, as the recipe sets it (the recipe-wide gates.accuracy,
    else its defaults): `measure` (what the figures are), `judge` (its thresholds), and the labelled set
    when the goal is a drop against labels: the precision step's measure, part of its key."""
    from recipekit.core.errors import RecipeError
    from recipekit.gates.accuracy.gate import AccuracyConfig

    cfg = recipe.gates.get("accuracy") or AccuracyConfig()
    th = cfg.thresholds()
    out = {
        "measure": {k: getattr(cfg, k) for k in MEASURE},
        "judge": {k: getattr(th, k) for k in THRESHOLDS},
    }
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
