"""Per-level heads: a detector whose candidates come out per feature level (stride), split over
several outputs, decoded by a declared decoder into one candidate list.

Each output of a head (outputs sharing `head`) is one level's tensor, (B, C, H, W) (`layout: nchw`)
or (B, H*W, C) (`nlc`, H and W the input size / stride, rounded up), holding some of the level's
channel groups: class scores and the box (several outputs per level are merged by `stride`).
Decoders:
- `dfl` (distribution focal loss: PicoDet, NanoDet, YOLOv8/YOLO11 split heads): `box_distribution`
  holds 4 x bins values, the distances left, top, right, bottom as a distribution over bins 0..bins-1
  (softmax when logits); the box is center -/+ expected distance x stride, the center the cell's
  (x + cell_offset, y + cell_offset) x stride (cell_offset default 0.5). Class scores are sigmoid
  probabilities (or logits).
- `yolox` (objectness x class): `box_offsets` (tx, ty, tw, th): center ((x + tx + cell_offset) x
  stride, ...), size exp(tw) x stride (cell_offset default 0); score = objectness x class score.

The decoded candidates (batch, anchors, 4 + classes: xyxy input pixels, then probabilities) are
compared as a raw head is (box_px, score_abs; candidates under min_score on both sides left out),
a failure naming the level and the cell; the accuracy gate scores their NMS'd detections.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .raw_heads import compare_candidates, sigmoid
from .tolerances import FormatError

DECODED_GROUPS = "box, class_scores"


def _rows(arr: Any, kind: dict[str, Any], image_hw: Any) -> tuple[np.ndarray, int, int]:
    """One level's output as (batch, H*W, channels), with its H and W."""
    a = np.asarray(arr)
    a = a[None] if kind.get("batch_axis", 0) is None else a
    if kind.get("layout", "nchw") == "nchw":
        if a.ndim != 4:
            raise FormatError(f"a level (nchw) is (batch, channels, H, W), got shape {list(np.shape(arr))}")
        b, c, h, w = a.shape
        return a.reshape(b, c, h * w).transpose(0, 2, 1), h, w
    if a.ndim != 3:
        raise FormatError(f"a level (nlc) is (batch, H*W, channels), got shape {list(np.shape(arr))}")
    if image_hw is None:
        raise FormatError("an nlc level needs the input size to know its grid")
    s = int(kind["stride"])
    h, w = math.ceil(image_hw[0] / s), math.ceil(image_hw[1] / s)
    if h * w != a.shape[1]:
        raise FormatError(f"stride {s} at {image_hw[0]}x{image_hw[1]} is a {h}x{w} grid, the output has {a.shape[1]}")
    return a, h, w


def _levels(arrays: dict[str, Any], kinds: dict[str, dict[str, Any]], image_hw: Any) -> dict[int, dict[str, Any]]:
    """stride -> {"hw": (H, W), role: (values (batch, cells, n), field)} merged over the level's outputs."""
    levels: dict[int, dict[str, Any]] = {}
    for name, arr in arrays.items():
        kind = kinds[name]
        rows, h, w = _rows(arr, kind, image_hw)
        level = levels.setdefault(int(kind["stride"]), {"hw": (h, w)})
        if level["hw"] != (h, w):
            raise FormatError(f"{name}: a {h}x{w} grid, other outputs of stride {kind['stride']} are {level['hw']}")
        for g in kind["groups"]:
            if g["stop"] > rows.shape[2]:
                span = f"[{g['start']}, {g['stop']})"
                raise FormatError(f"{name}: {g['name']} channels {span} beyond its {rows.shape[2]}")
            level[g["role"]] = (rows[..., g["start"] : g["stop"]].astype(np.float64), g)
    return levels


def _prob(values: np.ndarray, field: dict[str, Any]) -> np.ndarray:
    return sigmoid(values) if field.get("unit") == "logit" else values


def _decode_level(level: dict[str, Any], stride: int, kind: dict[str, Any]) -> np.ndarray:
    """(batch, cells, 4 + classes): xyxy input pixels, then probabilities."""
    h, w = level["hw"]
    decoder = kind["decoder"]
    offset = float(kind.get("cell_offset", 0.5 if decoder == "dfl" else 0.0))
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    cx, cy = ((xs.ravel() + offset) * stride)[None], ((ys.ravel() + offset) * stride)[None]
    cls = _prob(*level["class_scores"])
    if decoder == "dfl":
        dist, f = level["box_distribution"]
        d = dist.reshape(*dist.shape[:2], 4, -1)
        if f.get("unit", "logit") == "logit":
            e = np.exp(d - d.max(axis=-1, keepdims=True))
            d = e / e.sum(axis=-1, keepdims=True)
        ltrb = (d * np.arange(d.shape[-1])).sum(axis=-1) * stride
        box = np.stack([cx - ltrb[..., 0], cy - ltrb[..., 1], cx + ltrb[..., 2], cy + ltrb[..., 3]], axis=-1)
    else:
        t = level["box_offsets"][0]
        px, py = cx + t[..., 0] * stride, cy + t[..., 1] * stride
        bw, bh = np.exp(np.clip(t[..., 2], -30, 30)) * stride, np.exp(np.clip(t[..., 3], -30, 30)) * stride
        box = np.stack([px - bw / 2, py - bh / 2, px + bw / 2, py + bh / 2], axis=-1)
        if "objectness" in level:
            cls = cls * _prob(*level["objectness"])
    return np.concatenate([box, cls], axis=-1)


def decode(arrays: dict[str, Any], kinds: dict[str, dict[str, Any]], image_hw: Any = None) -> tuple[np.ndarray, list]:
    """One head's outputs -> (batch, anchors, 4 + classes) candidates and, per anchor, (stride, y, x)."""
    levels = _levels(arrays, kinds, image_hw)
    kind = next(iter(kinds.values()))
    parts, where = [], []
    for stride in sorted(levels):
        level = levels[stride]
        need = ("box_distribution" if kind["decoder"] == "dfl" else "box_offsets", "class_scores")
        missing = [r for r in need if r not in level]
        if missing:
            raise FormatError(f"stride {stride} has no {', '.join(missing)} channels in any output of the head")
        parts.append(_decode_level(level, stride, kind))
        h, w = level["hw"]
        where += [(stride, y, x) for y in range(h) for x in range(w)]
    widths = {p.shape[-1] for p in parts}
    if len(widths) != 1:
        raise FormatError(f"levels have different class counts ({sorted(w - 4 for w in widths)})")
    return np.concatenate(parts, axis=1), where


def decoded_kind(cands: np.ndarray) -> dict[str, Any]:
    """The raw-head semantics of decoded candidates."""
    nc = cands.shape[-1] - 4
    box = {"role": "box", "start": 0, "stop": 4, "unit": "px", "format": "xyxy", "name": "box"}
    cls = {"role": "class_scores", "start": 4, "stop": 4 + nc, "unit": "probability", "name": "class_scores"}
    return {"kind": "level_head", "groups": [box, cls]}


def compare(head: str, ref: dict, got: dict, kinds: dict, tolerances: Any, image_hw: Any = None) -> dict[str, Any]:
    """Both sides decoded, then compared per channel group as a raw head; a failure names level and cell."""
    row: dict[str, Any] = {"output": head, "kind": "level_head", "outputs": list(kinds), "passed": False}
    try:
        (r, where), (o, _) = decode(ref, kinds, image_hw), decode(got, kinds, image_hw)
    except (FormatError, KeyError, ValueError) as exc:
        return {**row, "reason": f"cannot decode the head: {exc}"}
    if r.shape != o.shape:
        return {**row, "reason": f"decoded {list(o.shape)} != reference {list(r.shape)}"}
    label = lambda a: "stride {} cell (y {}, x {})".format(*where[a])  # noqa: E731
    kind = {**decoded_kind(r), "decoder": next(iter(kinds.values()))["decoder"]}
    out, _ = compare_candidates(head, r, o, kind, tolerances, image_hw, label)
    return {**out, "outputs": list(kinds), "decoder": kind["decoder"]}


def shape_problem(kind: dict[str, Any], dims: list[Any]) -> str | None:
    batched = kind.get("batch_axis", 0) is not None
    nchw = kind.get("layout", "nchw") == "nchw"
    rank = (4 if nchw else 3) - (0 if batched else 1)
    if len(dims) != rank:
        axes = "(batch, channels, H, W)" if nchw else "(batch, H*W, channels)"
        return f"a level ({kind.get('layout', 'nchw')}) is {axes}, but the output has rank {len(dims)}"
    width = dims[1 - (0 if batched else 1)] if nchw else dims[-1]
    need = max(g["stop"] for g in kind["groups"])
    if isinstance(width, int) and 0 < width < need:
        return f"it has {width} channels, the declared groups need {need}"
    return None
