"""Declared outputs -> detections per image: boxes (n, 4) xyxy in input pixels, scores (n,), classes (n,).

Reads the output semantics of recipekit.recipe.outputs (canonical JSON). A raw head (candidates
before NMS) is decoded the way its exporter's runtime would: score = best class score, then
class-wise NMS (OpenCV's NMSBoxesBatched) at `iou`, keeping `max_det`. Detection lists (after NMS)
are read as they are, padding rows dropped.
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


class NotDetections(ValueError):
    """No output is declared as detections or a raw detection head."""


def _kinds(kinds: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from recipekit.recipe.outputs import canonical, parse

    return {name: canonical(parse(k)) for name, k in kinds.items()}


def _xyxy(box: np.ndarray, field: dict[str, Any], hw: tuple[int, int]) -> np.ndarray:
    box = box.astype(np.float64)
    if field.get("unit") == "normalized":
        box = box * np.array([hw[1], hw[0], hw[1], hw[0]], dtype=np.float64)
    fmt = field.get("format", "xyxy")
    if fmt == "cxcywh":
        return np.concatenate([box[:, :2] - box[:, 2:] / 2, box[:, :2] + box[:, 2:] / 2], axis=1)
    if fmt == "xywh":
        return np.concatenate([box[:, :2], box[:, :2] + box[:, 2:]], axis=1)
    return box


def _prob(values: np.ndarray, unit: str) -> np.ndarray:
    return 1 / (1 + np.exp(-values)) if unit == "logit" else values


def _score_class(fields: dict[str, tuple[np.ndarray, dict]]) -> tuple[np.ndarray, np.ndarray]:
    if "class_scores" in fields:
        values, f = fields["class_scores"]
        values = _prob(values.astype(np.float64), f["unit"])
        return values.max(axis=1), values.argmax(axis=1)
    values, f = fields["score"]
    score = _prob(values.reshape(len(values), -1)[:, 0].astype(np.float64), f["unit"])
    cls = fields["class"][0].reshape(len(score), -1)[:, 0] if "class" in fields else np.zeros(len(score))
    return score, cls.astype(np.int64)


def _rows(rows: np.ndarray, columns: list[dict[str, Any]]) -> dict[str, tuple[np.ndarray, dict]]:
    return {c["role"]: (rows[:, c["start"] : c["stop"]], c) for c in columns}


def nms(d: Dets, iou: float, max_det: int, min_score: float) -> Dets:
    """Class-wise NMS (OpenCV), best first, at most max_det."""
    import cv2

    keep = d.score >= min_score
    d = Dets(d.box[keep], d.score[keep], d.cls[keep])
    if not len(d.score):
        return d
    xywh = np.concatenate([d.box[:, :2], d.box[:, 2:] - d.box[:, :2]], axis=1)
    idx = cv2.dnn.NMSBoxesBatched(xywh.tolist(), d.score.tolist(), d.cls.tolist(), min_score, iou, top_k=max_det)
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)[:max_det]
    return Dets(d.box[idx], d.score[idx], d.cls[idx])


def _raw_head(arr: np.ndarray, kind: dict[str, Any], hw: tuple[int, int]) -> list[Dets]:
    arr = np.asarray(arr)
    if kind.get("batch_axis") is None:
        arr = arr[None]
    c_ax, a_ax = kind["channel_axis"], kind["anchor_axis"]
    out = []
    for img in arr:  # (..channels.., ..anchors..) -> (anchors, channels)
        rows = np.moveaxis(img, (c_ax - 1, a_ax - 1), (1, 0)).reshape(img.shape[a_ax - 1], -1)
        fields = _rows(rows, kind["groups"])
        score, cls = _score_class(fields)
        out.append(Dets(_xyxy(fields["box"][0], fields["box"][1], hw), score, cls))
    return out


def _detection_group(arrays: list[tuple[np.ndarray, dict[str, Any]]], hw: tuple[int, int]) -> list[Dets]:
    per_image: list[dict[str, tuple[np.ndarray, dict]]] | None = None
    for arr, kind in arrays:
        arr = np.asarray(arr)
        images = list(arr) if kind.get("batch_axis") == 0 else [arr]
        per_image = per_image or [{} for _ in images]
        for slot, img in zip(per_image, images, strict=True):
            if "field" in kind:
                slot[kind["field"]["role"]] = (img.reshape(len(img), -1), kind["field"])
            else:
                slot.update(_rows(img.reshape(len(img), -1), kind["columns"]))
    out = []
    for fields in per_image or []:
        score, cls = _score_class(fields)
        box = _xyxy(fields["box"][0], fields["box"][1], hw)
        real = ~((score == 0) & np.all(box == 0, axis=1))
        out.append(Dets(box[real], score[real], cls[real]))
    return out


def detections(
    names: list[str], outputs: list[np.ndarray], kinds: dict[str, Any], hw: tuple[int, int], nms_cfg: dict[str, float]
) -> list[Dets]:
    """Detections per image from one run's outputs (raw heads decoded and NMS'd with `nms_cfg`)."""
    canon, arrays = _kinds({n: kinds.get(n, {"kind": "tensor"}) for n in names}), dict(zip(names, outputs, strict=True))
    heads = [n for n in names if canon[n]["kind"] == "raw_head"]
    if heads:
        dets = _raw_head(arrays[heads[0]], canon[heads[0]], hw)
        return [nms(d, nms_cfg["iou"], int(nms_cfg["max_det"]), nms_cfg["min_score"]) for d in dets]
    groups: dict[str, list[tuple[np.ndarray, dict]]] = {}
    for n in names:
        if canon[n]["kind"] == "detections":
            groups.setdefault(canon[n].get("group") or n, []).append((arrays[n], canon[n]))
    if not groups:
        raise NotDetections("no output is declared as detections or a raw detection head")
    dets = _detection_group(next(iter(groups.values())), hw)
    return [nms(d, 1.0, 10**9, nms_cfg["min_score"]) for d in dets]
