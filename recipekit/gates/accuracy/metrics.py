"""Task metrics: how far an artifact's outputs are from its reference's, in the terms of each task.

    from recipekit.gates.accuracy.metrics import Options, metric, tasks

    for task in tasks(output_names, output_kinds):
        figures = metric(task, reference, artifact, Options(image_hw=[(640, 640), ...]))

- `tasks(names, kinds)`: the tasks a model's declared outputs (canonical JSON of recipekit.recipe.outputs)
  make: one per detector (a raw head, a level head, a detection group), per dense map, sequence,
  class-score and embedding output. Tensors and prototype masks have none of their own.
- `reference`, `artifact`: one entry per image (or per batch): output name -> array as the model
  returned it; `Options.image_hw`: the input's (H, W) per entry (or one for all).
- `metric(...)` returns plain JSON figures: `metric` (the figure's name), `value` (the headline, the
  worse direction for detections; None when it cannot be computed), `directions` (detections: each
  side once as the truth, with its value and how many items it rests on), `per_image` (per entry:
  `reference_items`, `artifact_items` and the kind's own figures), `reference_items`,
  `artifact_items`, and `problems`: directions or figures that cannot be computed (never dropped).

Per kind: detections, mAP50-95 agreement both ways (faster-coco-eval; the reference's detections at
>= score_threshold as the truth for the artifact's at >= min_score, and the other way round; items:
confident detections); dense maps, IoU of the binarized maps and mean absolute error (items:
reference foreground pixels); class scores, top-1 and top-5 agreement (items: images); sequences,
greedy-CTC exact-match rate and character error rate (items: reference characters); embeddings,
cosine similarity (items: vectors). `judge(figures, thresholds)` turns figures into failures,
`not exercised` below `min_items`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DETECTORS = ("raw_head", "level_head", "detections")
MIN_ITEMS = {"detections": 10, "dense_map": 100, "class_scores": 1, "sequence": 10, "embedding": 1}
"""Default `min_items` per task kind (detectors: detections): below it a figure rests on too little to judge."""
ITEMS = {
    "detections": "reference detections at >= score_threshold",
    "dense_map": "reference foreground pixels",
    "class_scores": "images",
    "sequence": "reference characters",
    "embedding": "vectors",
}


@dataclass(frozen=True)
class Task:
    name: str  # a detection group, a head, or the output
    kind: str  # raw_head | level_head | detections | dense_map | sequence | class_scores | embedding
    outputs: tuple[str, ...]

    @property
    def family(self) -> str:
        """What MIN_ITEMS and the thresholds go by: detectors are `detections`."""
        return "detections" if self.kind in DETECTORS else self.kind


@dataclass
class Options:
    image_hw: Any = None  # (H, W), or one per entry
    score_threshold: float = 0.25
    min_score: float = 0.001
    iou: float = 0.7
    max_det: int = 300
    kinds: dict[str, Any] = field(default_factory=dict)

    def hw(self, k: int) -> Any:
        hw = self.image_hw
        return tuple(hw[k]) if hw is not None and len(hw) and isinstance(hw[0], list | tuple) else hw


def tasks(names: list[str], kinds: dict[str, dict[str, Any]]) -> list[Task]:
    """The tasks the declared outputs make, in output order."""
    from recipekit.onnx.compare import owner

    out: dict[str, Task] = {}
    for name in names:
        kind = (kinds or {}).get(name) or {"kind": "tensor"}
        what = kind.get("kind")
        if what in ("tensor", "prototype_masks"):
            continue
        key = owner(name, kind)
        prev = out.get(key)
        out[key] = Task(key, str(what), (*prev.outputs, name) if prev else (name,))
    return list(out.values())


def metric(task: Task, reference: list[dict[str, Any]], artifact: list[dict[str, Any]], options: Options) -> dict:
    """The task's figures over every entry (see the module docs); `options.kinds`: output name -> semantics."""
    kinds = {n: options.kinds[n] for n in task.outputs}
    if task.family == "detections":
        return _detections(task, reference, artifact, kinds, options)
    name = task.outputs[0]
    refs, gots = [np.asarray(e[name]) for e in reference], [np.asarray(e[name]) for e in artifact]
    return {"task": task.name, "kind": task.kind, **KIND_METRICS[task.kind](refs, gots, kinds[name])}


# --- detections -----------------------------------------------------------------------------------


def _detections(task: Task, reference: list, artifact: list, kinds: dict, options: Options) -> dict[str, Any]:
    from recipekit.gates.accuracy.coco import box_map
    from recipekit.gates.accuracy.decode import task_detections

    cfg = {"iou": options.iou, "max_det": options.max_det, "min_score": options.min_score}
    refs, gots, hws = [], [], []
    for k, (r, g) in enumerate(zip(reference, artifact, strict=True)):
        hw = options.hw(k)
        part = lambda e: {n: e[n] for n in task.outputs}  # noqa: E731
        one = task_detections(task.kind, part(r), kinds, hw, cfg)
        refs += one
        gots += task_detections(task.kind, part(g), kinds, hw, cfg)
        hws += [hw] * len(one)
    thr = options.score_threshold
    conf_r, conf_g = [d.above(thr) for d in refs], [d.above(thr) for d in gots]
    directions = {
        "reference_as_truth": _direction(box_map(conf_r, gots, hws), "reference", thr),
        "artifact_as_truth": _direction(box_map(conf_g, refs, hws), "artifact", thr),
    }
    per = [
        {"image": k, "reference_items": len(r.score), "artifact_items": len(g.score)}
        for k, (r, g) in enumerate(zip(conf_r, conf_g, strict=True))
    ]
    values = [d["map50_95"] for d in directions.values()]
    problems = [f"{name}: {d['why']}" for name, d in directions.items() if d["map50_95"] is None]
    return {
        "task": task.name,
        "kind": task.kind,
        "metric": "map50_95",
        "value": None if problems else round(min(values), 4),
        "map50": None if problems else round(min(d["map50"] for d in directions.values()), 4),
        "score_threshold": thr,
        "directions": directions,
        "per_image": per,
        "reference_items": sum(p["reference_items"] for p in per),
        "artifact_items": sum(p["artifact_items"] for p in per),
        "problems": problems,
    }


def _direction(m: dict[str, Any], side: str, thr: float) -> dict[str, Any]:
    out = {
        "map50_95": None if m["map50_95"] is None else round(m["map50_95"], 4),
        "map50": None if m["map50"] is None else round(m["map50"], 4),
        "truth_items": m["truth_boxes"],
        "predictions": m["pred_boxes"],
    }
    if m["map50_95"] is None:
        out["why"] = f"cannot be computed: the {side} has no detection at score >= {thr:g} to serve as the truth"
    return out


# --- the other kinds ---------------------------------------------------------------------------------


def _per_kind(metric: str, figs: dict[str, Any], value: str, extra: dict[str, Any], problem: str | None) -> dict:
    """A kind's figures in the common form: headline value, per image, items on both sides, problems."""
    per = figs["per_image"]
    return {
        "metric": metric,
        "value": figs[value],
        **extra,
        "per_image": per,
        "reference_items": figs["items"],
        "artifact_items": sum(p["artifact_items"] for p in per),
        "problems": [problem] if problem else [],
    }


def _dense(refs: list, gots: list, kind: dict) -> dict[str, Any]:
    from recipekit.onnx.compare import dense

    figs = dense.iou_mae([dense.bchw(r, kind) for r in refs], [dense.bchw(g, kind) for g in gots], kind)
    threshold = dense.threshold(kind) if kind.get("classes") != "per_pixel" else "argmax"
    return _per_kind("iou", figs, "iou", {"mae": figs["mae"], "threshold": threshold}, None if refs else "no image")


def _sequences(refs: list, gots: list, kind: dict) -> dict[str, Any]:
    from recipekit.onnx.compare import sequences

    figs = sequences.decoded([sequences.btc(r, kind) for r in refs], [sequences.btc(g, kind) for g in gots], kind)
    why = None if figs["cer"] is not None else "character error rate: the reference decodes no character"
    return _per_kind("exact_match", figs, "exact_match", {"cer": figs["cer"]}, why)


def _class_scores(refs: list, gots: list, kind: dict) -> dict[str, Any]:
    per = []
    for k, (r, g) in enumerate(zip(refs, gots, strict=True)):
        r2, g2 = (np.asarray(x, np.float64).reshape(-1, np.shape(x)[-1]) for x in (r, g))
        for rv, gv in zip(r2, g2, strict=True):
            top = min(5, len(rv))
            rt, gt = np.argsort(-rv, kind="stable")[:top], np.argsort(-gv, kind="stable")[:top]
            per.append(
                {
                    "image": k,
                    "reference_items": 1,
                    "artifact_items": 1,
                    "top1_equal": bool(rt[0] == gt[0]),
                    "top5_shared": len(set(rt.tolist()) & set(gt.tolist())) / top,
                    "reference_top1": int(rt[0]),
                    "artifact_top1": int(gt[0]),
                }
            )
    n = len(per)
    return {
        "metric": "top1",
        "value": sum(p["top1_equal"] for p in per) / n if n else None,
        "top5": float(np.mean([p["top5_shared"] for p in per])) if n else None,
        "per_image": per,
        "reference_items": n,
        "artifact_items": n,
        "problems": [] if n else ["no image"],
    }


def _embeddings(refs: list, gots: list, kind: dict) -> dict[str, Any]:
    from recipekit.onnx.compare import embeddings

    figs = embeddings.similarity(
        [embeddings.vectors(r, kind) for r in refs], [embeddings.vectors(g, kind) for g in gots]
    )
    return {
        "metric": "cosine",
        "value": figs["cosine_mean"],
        "cosine_min": figs["cosine_min"],
        "per_image": figs["per_image"],
        "reference_items": figs["items"],
        "artifact_items": figs["items"],
        "problems": [] if figs["items"] else ["no vector"],
    }


KIND_METRICS = {
    "dense_map": _dense,
    "sequence": _sequences,
    "class_scores": _class_scores,
    "embedding": _embeddings,
}


# --- judging ---------------------------------------------------------------------------------------


@dataclass
class Thresholds:
    min_agreement: float = 0.8
    min_count_ratio: float = 0.5
    min_iou: float = 0.8
    max_mae: float = 0.05
    min_top1: float = 0.8
    min_top5: float = 0.8
    min_exact_match: float = 0.8
    max_cer: float = 0.1
    min_cosine: float = 0.98
    min_items: dict[str, int] = field(default_factory=dict)

    def items_needed(self, task: Task) -> int:
        return int(self.min_items.get(task.name, self.min_items.get("", MIN_ITEMS[task.family])))


def exercised(task: Task, figures: dict[str, Any], th: Thresholds) -> str | None:
    """Why the figures rest on too little to judge (None: they do not)."""
    need, have = th.items_needed(task), int(figures["reference_items"])
    if have >= need:
        return None
    return (
        f"{task.name}: not exercised: {have} {ITEMS[task.family]} over {_images(figures)} image(s), "
        f"fewer than min_items {need}"
    )


def _images(figures: dict[str, Any]) -> int:
    return len({p["image"] for p in figures["per_image"]})


def judge(task: Task, figures: dict[str, Any], th: Thresholds) -> list[str]:
    """Failures of one task's figures: not exercised, a figure that cannot be computed, a figure out of bounds."""
    why = exercised(task, figures, th)
    if why:
        return [why]
    out = [f"{task.name}: {p}" for p in figures["problems"]]
    if out:
        return out
    checks = {
        "detections": [("mAP50-95 agreement", figures["value"], ">=", th.min_agreement, "min_agreement")],
        "dense_map": [
            ("binarized map IoU", figures["value"], ">=", th.min_iou, "min_iou"),
            ("mean absolute error", figures.get("mae"), "<=", th.max_mae, "max_mae"),
        ],
        "class_scores": [
            ("top-1 agreement", figures["value"], ">=", th.min_top1, "min_top1"),
            ("top-5 agreement", figures.get("top5"), ">=", th.min_top5, "min_top5"),
        ],
        "sequence": [
            ("exact-match rate", figures["value"], ">=", th.min_exact_match, "min_exact_match"),
            ("character error rate", figures.get("cer"), "<=", th.max_cer, "max_cer"),
        ],
        "embedding": [("cosine similarity", figures["value"], ">=", th.min_cosine, "min_cosine")],
    }[task.family]
    rests = f"on {figures['reference_items']} {ITEMS[task.family]} over {_images(figures)} image(s)"
    for label, value, op, bound, key in checks:
        ok = value >= bound if op == ">=" else value <= bound
        if not ok:
            out.append(f"{task.name}: {label} {value:.4g} {'<' if op == '>=' else '>'} {key} {bound:g} ({rests})")
    if task.family == "detections":
        out += _count_ratio(task, figures, th)
    return out


def _count_ratio(task: Task, figures: dict[str, Any], th: Thresholds) -> list[str]:
    """An artifact with far fewer (or far more) confident detections than its reference fails."""
    r, a = figures["reference_items"], figures["artifact_items"]
    ratio = min(r, a) / max(r, a) if max(r, a) else 1.0
    if ratio >= th.min_count_ratio:
        return []
    return [
        f"{task.name}: {a} artifact detections vs {r} reference detections at score >= "
        f"{figures['score_threshold']:g}: count ratio {ratio:.2f} < min_count_ratio {th.min_count_ratio:g}"
    ]
