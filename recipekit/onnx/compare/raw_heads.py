"""Raw heads: one tensor holding every candidate (anchor) of a detection head before NMS.

Compared per channel group, each in its own units: box coordinates in input pixels (box_px),
keypoints as a distance in pixels (keypoints_px), probabilities by score_abs, angles by angle_rad,
the rest by atol AND rtol. Candidates whose score is below min_score in both results are not
compared outside the score groups (they can never become detections); the row states how many were
compared. A head where no candidate scores >= min_score on either side compared no coordinate: the
gates report that as not exercised (recipekit.gates.tolerance.exercised).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .tensors import fmt, rule_of, value_errors, worst_element
from .tolerances import FormatError, all_of, resolve, threshold_text

AnchorLabel = Callable[[int], str]


def bac(arr: np.ndarray, kind: dict[str, Any]) -> np.ndarray:
    """A raw head as (batch, anchors, channels)."""
    batched = kind.get("batch_axis", 0) is not None
    a = arr if batched else arr[None]
    shift = 0 if batched else 1
    if a.ndim != 3:
        raise FormatError(f"a raw head has 3 axes (batch, channels, anchors), got shape {list(arr.shape)}")
    return np.moveaxis(a, (kind.get("anchor_axis", 2) + shift, kind.get("channel_axis", 1) + shift), (1, 2))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64), -60, 60)))


def candidate_scores(cands: np.ndarray, groups: list[dict[str, Any]]) -> np.ndarray:
    """(batch, anchors) score of each candidate: its best class score (times a score group, if any)."""
    out = np.ones(cands.shape[:2])
    for g in groups:
        if g["role"] in ("score", "class_scores"):
            v = cands[..., g["start"] : g["stop"]].astype(np.float64)
            v = sigmoid(v) if g["unit"] == "logit" else v
            out = out * np.max(v, axis=-1)
    return np.nan_to_num(out, nan=np.inf)


def scale(values: np.ndarray, unit: str, image_hw: tuple[int, int] | None, what: str) -> np.ndarray:
    """Normalized x, y, x, y ... values to pixels (alternating W and H)."""
    if unit != "normalized":
        return values.astype(np.float64)
    if image_hw is None:
        raise FormatError(f"{what} is normalized: the comparison needs the input size")
    wh = np.resize(np.array([image_hw[1], image_hw[0]], np.float64), values.shape[-1])
    return values.astype(np.float64) * wh


def to_xyxy(box: np.ndarray, fmt: str) -> np.ndarray:
    """(n, 4) boxes in `fmt` (xyxy, cxcywh, xywh) as xyxy."""
    if fmt == "xywh":
        return np.concatenate([box[:, :2], box[:, :2] + box[:, 2:]], axis=1)
    if fmt == "cxcywh":
        return np.concatenate([box[:, :2] - box[:, 2:] / 2, box[:, :2] + box[:, 2:] / 2], axis=1)
    return box


def _group_arrays(
    g: dict[str, Any], ref: np.ndarray, got: np.ndarray, image_hw: Any
) -> list[tuple[str, Any, Any, str]]:
    """(part, ref, got, tolerance key) of one group, per anchor: values shaped (..., n)."""
    r, o = ref[..., g["start"] : g["stop"]], got[..., g["start"] : g["stop"]]
    if g["role"] == "box":
        return [("", scale(r, g["unit"], image_hw, g["name"]), scale(o, g["unit"], image_hw, g["name"]), "box_px")]
    if g["role"] != "keypoints":
        return [("", r, o, rule_of(g["role"], g["unit"]))]
    dims = g["dims"]
    rk, ok = r.reshape(*r.shape[:-1], -1, dims), o.reshape(*o.shape[:-1], -1, dims)
    rxy, oxy = scale(rk[..., :2], g["unit"], image_hw, g["name"]), scale(ok[..., :2], g["unit"], image_hw, g["name"])
    parts = [("xy", rxy, oxy, "keypoints_px")]
    if dims == 3:
        parts.append(("visibility", rk[..., 2], ok[..., 2], rule_of("score", g["visibility"])))
    return parts


def _part_errors(rv: np.ndarray, ov: np.ndarray, key: str, tol: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    if key == "keypoints_px":
        err = np.linalg.norm(rv - ov, axis=-1)
        return err, ~(err <= tol[key])
    return value_errors(rv, ov, key, tol)


def _channel_label(g: dict[str, Any], part: str, idx: tuple[int, ...]) -> str:
    if g["role"] == "box":
        c = idx[-1]
        return f"channel {g['start'] + c} ({_coord(g, c)})"
    if g["role"] == "keypoints":
        return f"keypoint {idx[-1]} {part} (channels from {g['start'] + idx[-1] * g['dims']})"
    if g["stop"] - g["start"] == 1:
        return f"channel {g['start']}"
    return f"channel {g['start'] + idx[-1]} ({g['role']} {idx[-1]})"


def _coord(g: dict[str, Any], c: int) -> str:
    names = {"xyxy": ("x1", "y1", "x2", "y2"), "cxcywh": ("cx", "cy", "w", "h"), "xywh": ("x", "y", "w", "h")}
    return names.get(g.get("format", "xyxy"), ("0", "1", "2", "3"))[c]


def _raw_group(name: str, g: dict, ref: np.ndarray, got: np.ndarray, keep: np.ndarray, tol: dict, ctx: dict) -> dict:
    """One channel group: figures, and a failure naming anchor, channel, both values, tolerance, unit."""
    scored = g["role"] in ("score", "class_scores")
    fig: dict[str, Any] = {
        "channels": [g["start"], g["stop"]],
        "role": g["role"],
        "unit": g["unit"],
        "failed": 0,
        "compared": "all candidates" if scored else "candidates >= min_score",
    }
    reasons = []
    for part, rv, ov, key in _group_arrays(g, ref, got, ctx["image_hw"]):
        err, bad = _part_errors(rv, ov, key, tol)
        mask = (
            np.ones(err.shape, bool)
            if scored
            else np.broadcast_to(keep.reshape(keep.shape + (1,) * (err.ndim - 2)), err.shape)
        )
        bad = bad & mask
        fig[f"{part or g['role']}_max" if part else "max"] = float(np.max(np.where(mask, err, 0), initial=0.0))
        fig[f"{part}_tolerance" if part else "tolerance"] = threshold_text(key, tol)
        fig["failed"] += int(bad.sum())
        if bad.any():
            idx, e = worst_element(rv, ov, bad, err)
            where = f"image {idx[0]} {ctx['anchor'](idx[1])} {_channel_label(g, part, idx[2:])}"
            reasons.append(
                f"{name} group {g['name']} (channels {g['start']}-{g['stop'] - 1}, {g['unit']}): "
                f"{int(bad.sum())} value(s) beyond {threshold_text(key, tol)}; worst: {where}: got "
                f"{fmt(ov[idx])} vs reference {fmt(rv[idx])}, error {e:.4g}"
            )
    return {"figures": fig, "reasons": reasons}


def compare_candidates(
    name: str,
    r: np.ndarray,
    o: np.ndarray,
    kind: dict[str, Any],
    tolerances: Any,
    image_hw: Any = None,
    anchor: AnchorLabel | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(batch, anchors, channels) candidates of both sides, per channel group of kind["groups"].
    Returns the row and what prototype masks need (scores, the compared candidates)."""
    row: dict[str, Any] = {"output": name, "kind": kind.get("kind", "raw_head"), "passed": False}
    groups = kind["groups"]
    min_score = resolve(tolerances, "min_score", name, None, kind)
    rs, os_ = candidate_scores(r, groups), candidate_scores(o, groups)
    keep = (rs >= min_score) | (os_ >= min_score)  # a candidate either side could keep; never ties at zero
    row.update(
        min_score=min_score,
        candidates=int(keep.size),
        compared_candidates=int(keep.sum()),
        not_compared_below_min_score=int(keep.size - keep.sum()),
        groups={},
    )
    reasons = []
    ctx = {"image_hw": image_hw, "anchor": anchor or (lambda a: f"anchor {a}")}
    for g in groups:
        tol = all_of(tolerances, name, g["name"], kind)
        try:
            res = _raw_group(name, g, r, o, keep, tol, ctx)
        except (FormatError, ValueError, IndexError) as exc:
            res = {"figures": {}, "reasons": [f"{name} group {g['name']}: {exc}"]}
        row["groups"][g["name"]] = res["figures"]
        reasons += res["reasons"]
    _headline(row)
    row["passed"] = not reasons
    if reasons:
        row["reason"] = "; ".join(reasons)
    return row, {"keep": keep, "scores": (rs, os_), "ref": r, "got": o}


def compare_raw_head(
    name: str, ref: np.ndarray, got: np.ndarray, kind: dict[str, Any], tolerances: Any, image_hw: Any = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One raw head, per channel group. Returns the row and what prototype masks need."""
    row: dict[str, Any] = {"output": name, "kind": "raw_head", "passed": False}
    if tuple(np.shape(ref)) != tuple(np.shape(got)):
        return {**row, "reason": f"shape {list(np.shape(got))} != reference {list(np.shape(ref))}"}, {}
    try:
        r, o = bac(np.asarray(ref), kind), bac(np.asarray(got), kind)
    except FormatError as exc:
        return {**row, "reason": str(exc)}, {}
    return compare_candidates(name, r, o, kind, tolerances, image_hw)


def _headline(row: dict[str, Any]) -> None:
    """The worst figure per role as the summary (and the report) read them: box_px_max, score_abs_max..."""
    for g in row["groups"].values():
        role = g.get("role")
        key = {"box": "box_px_max", "keypoints": "keypoints_px_max"}.get(role)
        value = g.get("xy_max") if role == "keypoints" else g.get("max")
        if role in ("score", "class_scores") and g.get("unit") == "probability":
            key = "score_abs_max"
        if key and value is not None:
            row[key] = max(row.get(key, 0.0), value)


def count(arr: Any, kind: dict[str, Any], threshold: float) -> int:
    """Candidates scoring >= threshold over every image."""
    return int((candidate_scores(bac(np.asarray(arr), kind), kind["groups"]) >= threshold).sum())


def shape_problem(kind: dict[str, Any], dims: list[Any]) -> str | None:
    """(batch, channels, anchors) in the declared axes, wide enough for every channel group."""
    rank = 3 if kind.get("batch_axis", 0) is not None else 2
    if len(dims) != rank:
        return f"a raw head has {rank} axes (batch, channels, anchors), but the output has rank {len(dims)}"
    axis = int(kind.get("channel_axis", 1))
    width = dims[axis] if axis < rank else None
    need = max(g["stop"] for g in kind["groups"])
    if isinstance(width, int) and width > 0 and width < need:
        return f"its channel axis has {width} channels, the declared groups need {need}"
    return None
