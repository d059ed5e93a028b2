"""Declared outputs -> detections per image: boxes (n, 4) xyxy in input pixels, scores (n,), classes (n,).

Reads the canonical output semantics of recipekit.recipe.outputs with the comparison's own readers
(recipekit.onnx.compare), so the gates and the accuracy gate see the same boxes. Candidates before
NMS (a raw head, or a per-level head after its decoder) are decoded the way an exporter's runtime
would: score = best class score (x objectness or a score group), probabilities (logits through a
sigmoid), then class-wise NMS (OpenCV's NMSBoxesBatched) at `iou`, keeping `max_det`. Detection
lists (after NMS) are read as they are, padding rows dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Dets:
    box: np.ndarray  # (n, 4) xyxy px
    score: np.ndarray  # (n,)
    cls: np.ndarray  # (n,) int

    def above(self, threshold: float) -> Dets:
        keep = self.score >= threshold
        return Dets(self.box[keep], self.score[keep], self.cls[keep])


def _prob(values: np.ndarray, unit: str) -> np.ndarray:
    from recipekit.onnx.compare.raw_heads import sigmoid

    return sigmoid(values) if unit == "logit" else values.astype(np.float64)


def nms(d: Dets, iou: float, max_det: int, min_score: float) -> Dets:
    """Class-wise NMS (OpenCV), best first, at most max_det."""
    import cv2

    d = d.above(min_score)
    if not len(d.score):
        return d
    xywh = np.concatenate([d.box[:, :2], d.box[:, 2:] - d.box[:, :2]], axis=1)
    idx = cv2.dnn.NMSBoxesBatched(xywh.tolist(), d.score.tolist(), d.cls.tolist(), min_score, iou, top_k=max_det)
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)[:max_det]
    return Dets(d.box[idx], d.score[idx], d.cls[idx])


def _candidates(cands: np.ndarray, groups: list[dict[str, Any]], hw: tuple[int, int]) -> list[Dets]:
    """(batch, anchors, channels) candidates of a raw head (or a decoded level head) per image."""
    from recipekit.onnx.compare.raw_heads import scale, to_xyxy

    by_role = {g["role"]: g for g in groups}
    b = by_role["box"]
    score = np.ones(cands.shape[:2])
    cls = np.zeros(cands.shape[:2], np.int64)
    for role in ("class_scores", "score"):
        if role in by_role:
            g = by_role[role]
            v = _prob(cands[..., g["start"] : g["stop"]], g["unit"])
            score = score * v.max(axis=-1)
            cls = v.argmax(axis=-1) if role == "class_scores" else cls
    boxes = cands[..., b["start"] : b["stop"]]
    return [
        Dets(to_xyxy(scale(boxes[i], b["unit"], hw, "box"), b.get("format", "xyxy")), score[i], cls[i])
        for i in range(len(cands))
    ]


def _units(kinds: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {f["role"]: f["unit"] for k in kinds.values() for f in (k.get("columns") or [k.get("field") or {}]) if f}


def _listed(arrays: dict[str, Any], kinds: dict[str, dict[str, Any]], hw: tuple[int, int]) -> list[Dets]:
    from recipekit.onnx.compare import read_detections

    units = _units(kinds)
    out = []
    for img in read_detections(arrays, kinds, hw):
        score = img["score"].astype(np.float64).reshape(-1)
        unit = units.get("score") or units.get("class_scores", "probability")
        cls = img["class"].reshape(-1).astype(np.int64) if "class" in img else np.zeros(len(score), np.int64)
        out.append(Dets(img["box"].astype(np.float64), _prob(score, unit), cls))
    return out


def task_detections(
    kind: str, arrays: dict[str, Any], kinds: dict[str, Any], hw: tuple[int, int], nms_cfg: dict[str, float]
) -> list[Dets]:
    """Detections per image of one detection task (`kind` raw_head, level_head or detections)."""
    from recipekit.onnx.compare import level_heads, raw_heads

    if kind == "detections":
        return [nms(d, 1.0, 10**9, nms_cfg["min_score"]) for d in _listed(arrays, kinds, hw)]
    if kind == "raw_head":
        arr, kind_json = next(iter(arrays.values())), next(iter(kinds.values()))
        dets = _candidates(raw_heads.bac(np.asarray(arr), kind_json), kind_json["groups"], hw)
    else:
        cands, _ = level_heads.decode(arrays, kinds, hw)
        dets = _candidates(cands, level_heads.decoded_kind(cands)["groups"], hw)
    return [nms(d, nms_cfg["iou"], int(nms_cfg["max_det"]), nms_cfg["min_score"]) for d in dets]
