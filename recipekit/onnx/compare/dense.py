"""Dense maps: a value per pixel, (B, C, H, W) or (B, H, W) (without the batch axis one image).

A binary map (a text detector's probability map, a saliency or matting map) has one channel or
none; per-pixel classes (semantic segmentation) have one channel per class. Values are
probabilities or logits (binary: sigmoid; classes: softmax over the channels).

Element-wise (parity and the other element-wise gates), in the map's own units: probabilities by
score_abs, logits by atol AND rtol; a failure names the image, the channel (class) and the pixel.
Task metric (`metric`): the binarized map (binary: value >= the declared threshold, default 0.5 for
probabilities and 0 for logits; classes: the argmax) compared as IoU (binary: of the foreground;
classes: the mean over the classes either side has), and the mean absolute error of the
probabilities. Its items are the reference's foreground pixels (binary: above the threshold;
classes: not the `background` class).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .raw_heads import sigmoid
from .tensors import compare_in_unit
from .tolerances import FormatError


def bchw(arr: Any, kind: dict[str, Any]) -> np.ndarray:
    """The map as (batch, channels, H, W)."""
    a = np.asarray(arr)
    if kind.get("batch_axis", 0) is None:
        a = a[None]
    if kind.get("channel_axis", 1) is None:
        a = a[:, None]
    elif kind.get("channel_axis", 1) != 1:
        a = np.moveaxis(a, kind["channel_axis"], 1)
    if a.ndim != 4:
        raise FormatError(f"a dense map is (batch, channels, H, W), got shape {list(np.shape(arr))}")
    return a


def probabilities(m: np.ndarray, kind: dict[str, Any]) -> np.ndarray:
    if kind.get("unit") != "logit":
        return m.astype(np.float64)
    if kind.get("classes") == "per_pixel":
        e = np.exp(m.astype(np.float64) - np.max(m, axis=1, keepdims=True))
        return e / np.sum(e, axis=1, keepdims=True)
    return sigmoid(m)


def threshold(kind: dict[str, Any]) -> float:
    """A binary map's foreground threshold, in the map's unit."""
    if kind.get("threshold") is not None:
        return float(kind["threshold"])
    return 0.0 if kind.get("unit") == "logit" else 0.5


def labels(m: np.ndarray, kind: dict[str, Any]) -> np.ndarray:
    """(batch, H, W) class per pixel: binary 1 (foreground) / 0; classes: the argmax."""
    if kind.get("classes") == "per_pixel":
        return np.argmax(m, axis=1)
    return (m[:, 0] >= threshold(kind)).astype(np.int64)


def _label(kind: dict[str, Any]) -> Any:
    """Names an element of the output: image, channel (class) and pixel; axes of the batched tensor."""
    axis, batched = kind.get("channel_axis", 1), kind.get("batch_axis", 0) is not None
    what = "class" if kind.get("classes") == "per_pixel" else "channel"

    def where(idx: tuple[int, ...]) -> str:
        full = idx if batched else (0, *idx)
        y, x = (v for k, v in enumerate(full) if k not in (0, axis))
        return f"image {full[0]}" + (f" {what} {full[axis]}" if axis is not None else "") + f" pixel (y {y}, x {x})"

    return where


def compare(name: str, ref: Any, got: Any, kind: dict[str, Any], tolerances: Any, image_hw: Any = None) -> dict:
    """Element-wise in the map's unit, plus the IoU of the binarized maps as a figure."""

    def figures(r: Any, g: Any) -> dict[str, Any]:
        figs = iou_mae([bchw(r, kind)], [bchw(g, kind)], kind)
        return {"map_iou": figs["iou"], "map_mae": figs["mae"], "foreground_ref": figs["items"]}

    return compare_in_unit(name, ref, got, kind, tolerances, _label(kind), figures)


def _overlaps(r: np.ndarray, g: np.ndarray, kind: dict[str, Any]) -> dict[int, tuple[int, int]]:
    """Per class (binary: the foreground, 1): (intersection, union) pixel counts of two label maps."""
    classes = np.union1d(np.unique(r), np.unique(g)) if kind.get("classes") == "per_pixel" else np.array([1])
    return {int(c): (int(((r == c) & (g == c)).sum()), int(((r == c) | (g == c)).sum())) for c in classes}


def _mean_iou(overlaps: dict[int, tuple[int, int]]) -> float:
    ious = [i / u for i, u in overlaps.values() if u]
    return float(np.mean(ious)) if ious else 1.0


def iou_mae(refs: list[np.ndarray], gots: list[np.ndarray], kind: dict[str, Any]) -> dict[str, Any]:
    """Over (batch, C, H, W) maps, one list entry per image: IoU of the binarized maps (pooled over the
    images, per class, then the mean over classes), mean absolute error of the probabilities, and per
    image both, with the reference's and the artifact's foreground pixel counts."""
    per, pooled, errs = [], {}, []
    for k, (r, g) in enumerate(zip(refs, gots, strict=True)):
        if r.shape != g.shape:
            raise FormatError(f"image {k}: shape {list(g.shape)} != reference {list(r.shape)}")
        lr, lg = labels(r, kind), labels(g, kind)
        ov = _overlaps(lr, lg, kind)
        for c, (i, u) in ov.items():
            pi, pu = pooled.get(c, (0, 0))
            pooled[c] = (pi + i, pu + u)
        mae = float(np.mean(np.abs(probabilities(r, kind) - probabilities(g, kind)))) if r.size else 0.0
        errs.append(mae)
        per.append(
            {
                "image": k,
                "reference_items": _fg(lr, kind),
                "artifact_items": _fg(lg, kind),
                "iou": _mean_iou(ov),
                "mae": mae,
            }
        )
    return {
        "iou": _mean_iou(pooled) if per else None,
        "mae": float(np.mean(errs)) if per else None,
        "items": sum(p["reference_items"] for p in per),
        "per_image": per,
    }


def _fg(lab: np.ndarray, kind: dict[str, Any]) -> int:
    return int((lab != kind.get("background", 0)).sum()) if kind.get("classes") == "per_pixel" else int(lab.sum())


def count(arr: Any, kind: dict[str, Any]) -> int:
    """Foreground pixels of the map."""
    m = bchw(arr, kind)
    return _fg(labels(m, kind), kind)


def shape_problem(kind: dict[str, Any], dims: list[Any]) -> str | None:
    """(batch,) channels, H, W: one channel or none for a binary map, at least two for per-pixel classes."""
    has_c, batched = kind.get("channel_axis", 1) is not None, kind.get("batch_axis", 0) is not None
    rank = 2 + int(has_c) + int(batched)
    if len(dims) != rank:
        axes = ", ".join(["batch"] * batched + ["channels"] * has_c + ["H", "W"])
        return f"a dense map has rank {rank} ({axes}), but the output has rank {len(dims)}"
    if not has_c:
        return None if kind.get("classes") != "per_pixel" else "per-pixel classes need a channel axis"
    c = dims[kind.get("channel_axis", 1) - (0 if batched else 1)]  # the axis of the batched tensor
    if isinstance(c, int) and c > 0:
        if kind.get("classes") == "per_pixel" and c < 2:
            return f"per-pixel classes need 2 or more channels, the output has {c} (a binary map: classes: binary)"
        if kind.get("classes") != "per_pixel" and c != 1:
            return f"a binary map has 1 channel, the output has {c} (per-pixel classes: classes: per_pixel)"
    return None
