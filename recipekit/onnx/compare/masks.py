"""Masks: instance masks and prototype masks, compared as mask IoU (a minimum) after decoding.

Prototype masks (B, nm, h, w) decode per candidate (raw head) or per matched detection as
sigmoid(coefficients @ prototypes) > 0.5, cropped to the reference's box. Pixels on the decision
boundary of the reference (MASK_BOUNDARY) are left out of the IoU, so float noise there cannot fail a
mask.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .raw_heads import to_xyxy
from .tensors import quantiles
from .tolerances import FormatError, resolve

MAX_MASKS = 100
"""Prototype masks are decoded for at most this many candidates per image (the highest scoring)."""


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of pairs of boolean masks (n, h, w) (1.0 where both are empty)."""
    inter = np.logical_and(a, b).sum(axis=(1, 2))
    union = np.logical_or(a, b).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def decode_masks(coef: np.ndarray, protos: np.ndarray, boxes: np.ndarray | None, image_hw: Any) -> np.ndarray:
    """(n, h, w) instance mask logits coef @ protos (mask: logit > 0), -inf outside the boxes (input px)."""
    nm, h, w = protos.shape
    logits = (coef.astype(np.float64) @ protos.reshape(nm, -1).astype(np.float64)).reshape(-1, h, w)
    if boxes is None or image_hw is None or not len(logits):
        return logits
    sy, sx = h / image_hw[0], w / image_hw[1]
    ys, xs = np.arange(h)[None, :, None] + 0.5, np.arange(w)[None, None, :] + 0.5
    b = boxes.astype(np.float64)
    inside = (
        (xs >= b[:, 0, None, None] * sx)
        & (xs < b[:, 2, None, None] * sx)
        & (ys >= b[:, 1, None, None] * sy)
        & (ys < b[:, 3, None, None] * sy)
    )
    return np.where(inside, logits, -np.inf)


MASK_BOUNDARY = 0.05
"""Mask pixels whose reference logit is within this of 0 (probability 0.4875..0.5125) sit on the decision
boundary: they are left out of the IoU, so float noise there cannot fail a mask."""


def logit_iou(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Mask IoU of (n, h, w) logits, pixels on the decision boundary of the reference left out."""
    sure = ~(np.abs(ref) < MASK_BOUNDARY)
    return mask_iou((ref > 0) & sure, (got > 0) & sure)


def _raw_mask_sets(ctx: dict[str, Any], kind: dict[str, Any], min_score: float) -> list[tuple[Any, ...]]:
    """Per image: (candidate indices, ref coefs, got coefs, ref boxes xyxy px) of the top candidates."""
    g = next(x for x in kind["groups"] if x["role"] == "mask_coefficients")
    bg = next(x for x in kind["groups"] if x["role"] == "box")
    rs, os_ = ctx["scores"]
    out = []
    for b in range(ctx["ref"].shape[0]):
        best = np.maximum(rs[b], os_[b])
        idx = np.nonzero(ctx["keep"][b])[0]  # the candidates the raw head's coordinates were compared on
        idx = idx[np.argsort(-best[idx], kind="stable")][:MAX_MASKS]
        boxes = to_xyxy(ctx["ref"][b, idx, bg["start"] : bg["stop"]].astype(np.float64), bg["format"])
        out.append((idx, ctx["ref"][b, idx, g["start"] : g["stop"]], ctx["got"][b, idx, g["start"] : g["stop"]], boxes))
    return out


def _det_mask_sets(ctx: dict[str, Any]) -> list[tuple[Any, ...]]:
    out = []
    for pairs, r, g in zip(ctx["pairs"], ctx["ref"], ctx["got"], strict=True):
        i = np.array([p[0] for p in pairs], dtype=int)
        j = np.array([p[1] for p in pairs], dtype=int)
        if "mask_coefficients" not in r:
            raise FormatError("the detections carry no mask_coefficients")
        out.append((i, r["mask_coefficients"][i], g["mask_coefficients"][j], r["box"][i]))
    return out


def compare_prototypes(
    name: str,
    ref: np.ndarray,
    got: np.ndarray,
    kind: dict,
    coef_kind: dict,
    ctx: Any,
    tolerances: Any,
    image_hw: Any = None,
) -> dict[str, Any]:
    """Prototype masks as mask IoU of the instances they decode (per candidate, or per matched detection)."""
    tol = resolve(tolerances, "mask_iou", name, None, kind)
    row: dict[str, Any] = {
        "output": name,
        "kind": "prototype_masks",
        "passed": False,
        "mask_iou": tol,
        "coefficients": kind["coefficients"],
    }
    if tuple(np.shape(ref)) != tuple(np.shape(got)):
        return {**row, "reason": f"shape {list(np.shape(got))} != reference {list(np.shape(ref))}"}
    if ctx is None:
        return {**row, "reason": f"coefficients output {kind['coefficients']} could not be read"}
    r, g = (np.asarray(a) if kind.get("batch_axis", 0) is not None else np.asarray(a)[None] for a in (ref, got))
    if not np.isfinite(g).all() and np.isfinite(r).all():
        return {**row, "reason": "non-finite prototype values in the result"}
    try:
        if coef_kind["kind"] == "raw_head":
            sets = _raw_mask_sets(
                ctx, coef_kind, resolve(tolerances, "min_score", kind["coefficients"], None, coef_kind)
            )
        else:
            sets = _det_mask_sets(ctx)
    except (FormatError, StopIteration, IndexError, ValueError) as exc:
        return {**row, "reason": f"cannot decode masks: {exc}"}
    ious, where = [], []
    for b, (idx, rc, gc, boxes) in enumerate(sets):
        if len(idx):
            iou = logit_iou(decode_masks(rc, r[b], boxes, image_hw), decode_masks(gc, g[b], boxes, image_hw))
            ious += iou.tolist()
            where += [(b, int(k)) for k in idx]
    row.update(decoded_masks=len(ious), **quantiles(np.asarray(ious), "mask_iou"))
    row["mask_iou_min"] = float(np.min(ious)) if ious else 1.0
    row["passed"] = all(v >= tol for v in ious)
    if not ious:
        row["note"] = "no candidate or matched detection to decode: prototypes not compared"
    if not row["passed"]:
        k = int(np.argmin(np.nan_to_num(ious, nan=-1.0)))
        unit = "anchor" if coef_kind["kind"] == "raw_head" else "detection"
        bad = sum(not v >= tol for v in ious)
        row["reason"] = (
            f"{name}: {bad} of {len(ious)} decoded masks below mask_iou {tol:g} IoU; worst: image "
            f"{where[k][0]} {unit} {where[k][1]}: IoU {ious[k]:.4g} of the result's mask with the reference's"
        )
    return row


def shape_problem(kind: dict[str, Any], dims: list[Any]) -> str | None:
    """Prototypes are (batch, masks, h, w) or (masks, h, w)."""
    rank = 4 if kind.get("batch_axis", 0) is not None else 3
    if len(dims) != rank:
        return f"prototype masks have rank {rank} (batch, masks, h, w), but the output has rank {len(dims)}"
    return None
