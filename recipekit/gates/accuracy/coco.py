"""COCO box mAP with faster-coco-eval (a maintained C++ port of COCO's own evaluation).

Ground truth and predictions are per-image Dets (xyxy pixels). Categories that no ground-truth box
has are ignored by COCO's evaluation, so agreement is scored both ways (each side once as the
ground truth): detections only one side has lower one of the two figures.
"""

from __future__ import annotations

import contextlib
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recipekit.gates.accuracy.decode import Dets


def _xywh(box: Any) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0)]


def _dataset(truth: list[Dets], hws: list[tuple[int, int]]) -> dict[str, Any]:
    images = [{"id": i + 1, "width": hw[1], "height": hw[0]} for i, hw in enumerate(hws)]
    anns, cats = [], set()
    for i, d in enumerate(truth):
        for box, cls in zip(d.box, d.cls, strict=True):
            xywh = _xywh(box)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": int(cls) + 1,
                    "bbox": xywh,
                    "area": xywh[2] * xywh[3],
                    "iscrowd": 0,
                }
            )
            cats.add(int(cls) + 1)
    return {"images": images, "annotations": anns, "categories": [{"id": c, "name": str(c)} for c in sorted(cats)]}


def box_map(truth: list[Dets], preds: list[Dets], hws: list[tuple[int, int]]) -> dict[str, Any]:
    """{"map50_95", "map50", "truth_boxes", "pred_boxes"}; the maps are None when there is no truth box.
    `hws`: each image's (H, W)."""
    from faster_coco_eval import COCO, COCOeval_faster

    n_truth, n_pred = sum(len(d.score) for d in truth), sum(len(d.score) for d in preds)
    out: dict[str, Any] = {"truth_boxes": n_truth, "pred_boxes": n_pred, "map50_95": None, "map50": None}
    if n_truth == 0:
        return out
    if n_pred == 0:
        return {**out, "map50_95": 0.0, "map50": 0.0}
    res = [
        {"image_id": i + 1, "category_id": int(c) + 1, "bbox": _xywh(b), "score": float(s)}
        for i, d in enumerate(preds)
        for b, s, c in zip(d.box, d.score, d.cls, strict=True)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(_dataset(truth, hws))
        ev = COCOeval_faster(gt, gt.loadRes(res), iouType="bbox", print_function=lambda *a, **k: None)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {**out, "map50_95": max(float(ev.stats[0]), 0.0), "map50": max(float(ev.stats[1]), 0.0)}
