"""The one output comparison: every gate, the Jetson check and `device-check` judge outputs with it.

numpy only, no recipekit imports: the Jetson bundle copies this file next to its check.py. It reads
the plain JSON output semantics of recipekit.recipe.outputs (`kinds[name]`, see that module for the
kinds, field roles and units) and compares each part of an output in its own units:

- tensor, mask_coefficients, values, logits: element-wise, failing where |a-b| > atol AND
  |a-b| > rtol*|ref| (NaN or Inf where the reference is finite fails).
- box coordinates: absolute error in input pixels (box_px); normalized boxes are scaled by the
  input's W and H first. Keypoints: the distance of (x, y) in pixels (keypoints_px).
- probabilities (scores, class scores, keypoint visibility): absolute error (score_abs).
- angles: absolute error modulo pi, in radians (angle_rad).
- masks (instance masks, prototype masks after decoding, cropped to the box): IoU at probability 0.5
  (mask_iou, a minimum), pixels on the decision boundary of the reference left out (MASK_BOUNDARY).
- raw heads: per channel group; candidates whose score is below min_score in both results are not
  compared outside the score groups (they can never become detections), except each image's
  MIN_CANDIDATES best, so coordinates are always exercised: the row states how many were compared.
- detections: matched (same class, IoU >= iou_match, greedily by IoU over all pairs); every reference
  and result detection scoring >= min_score must find a match; fields compared on matched pairs.

Tolerances: `tolerances` is one dict or a list of dicts (layers, first wins: the recipe's option for
the gate, then e.g. the recipe's parity option, then the gate's defaults). A value is a scalar or a
map whose keys are tried in order "<output>/<field>", "<output>" (a detection group's name for
detections) and "". What no layer sets takes the per-kind default (KIND_DEFAULTS, then DEFAULTS;
detections declaring the NMS `score_threshold` default min_score to score_threshold + score_abs).

A failure names the output, the channel group or field, the index (image, anchor or detection), both
values, the tolerance and its unit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

DEFAULTS: dict[str, float] = {
    "atol": 1e-3,
    "rtol": 1e-3,
    "box_px": 1.0,
    "keypoints_px": 1.0,
    "score_abs": 0.01,
    "angle_rad": 0.01,
    "mask_iou": 0.9,
    "iou_match": 0.5,
    "min_score": 0.0,
}
"""Per-kind defaults of every tolerance (pixels for coordinates, absolute for probabilities)."""
KIND_DEFAULTS: dict[str, dict[str, float]] = {"raw_head": {"min_score": 0.001}}
"""Raw heads: candidates under 0.001 (Ultralytics' validation threshold, the lowest any user runs NMS
at) in both results are not compared outside the score groups."""
TOLERANCE_KEYS = tuple(DEFAULTS)
KINDS = ("tensor", "class_scores", "raw_head", "detections", "prototype_masks")
UNIT_OF = {
    "box_px": "px",
    "keypoints_px": "px",
    "score_abs": "abs",
    "angle_rad": "rad",
    "mask_iou": "IoU",
    "atol": "abs",
    "rtol": "rel",
    "min_score": "score",
    "iou_match": "IoU",
}
MIN_CANDIDATES = 10
"""Raw heads: each image's 10 highest-scoring candidates are compared whatever their score, so box
coordinates are always exercised (a model that scores nothing >= min_score still has them checked)."""
MAX_MASKS = 100
"""Prototype masks are decoded for at most this many candidates per image (the highest scoring)."""
DETECTION_TOLERANCES = DEFAULTS  # the name of recipekit <= 0.3


class FormatError(ValueError):
    """An output does not have the layout its semantics describe."""


DetectionFormatError = FormatError


# --- tolerances --------------------------------------------------------------------------------


def layers_of(tolerances: Any) -> list[dict[str, Any]]:
    if not tolerances:
        return []
    return [t for t in tolerances if t] if isinstance(tolerances, list) else [tolerances]


def _lookup(value: Any, output: str, field: str | None) -> float | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return float(value)
    for key in ([f"{output}/{field}"] if field else []) + [output, ""]:
        if key in value and value[key] is not None:
            return float(value[key])
    return None


def resolve(tolerances: Any, key: str, output: str, field: str | None = None, kind: dict | None = None) -> float:
    """One tolerance for one output (and field): the first layer that sets it, else the per-kind default;
    plus the `margin` any layer declares for the key (e.g. for float16 artifacts)."""
    value = _first(tolerances, key, output, field, kind)
    if key in ("iou_match", "min_score", "mask_iou"):
        return value
    return value + sum(float((layer.get("margin") or {}).get(key, 0.0)) for layer in layers_of(tolerances))


def _first(tolerances: Any, key: str, output: str, field: str | None, kind: dict | None) -> float:
    for layer in layers_of(tolerances):
        got = _lookup(layer.get(key), output, field)
        if got is not None:
            return got
    kind = kind or {}
    if key == "min_score" and kind.get("score_threshold") is not None:
        return float(kind["score_threshold"]) + resolve(tolerances, "score_abs", output, field)
    return float(KIND_DEFAULTS.get(str(kind.get("kind")), {}).get(key, DEFAULTS[key]))


def tolerance(value: float | dict[str, float], output: str) -> float:
    """A scalar tolerance, or the per-output one (key "" is the default)."""
    got = _lookup(value, output, None)
    return 0.0 if got is None else got


# --- tensors -----------------------------------------------------------------------------------


def quantiles(values: np.ndarray, prefix: str) -> dict[str, float]:
    """max / mean / median / p99 of `values` as `<prefix>_max` ...; NaN propagates (and then fails)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return {f"{prefix}_max": 0.0, f"{prefix}_mean": 0.0, f"{prefix}_median": 0.0, f"{prefix}_p99": 0.0}
    return {
        f"{prefix}_max": float(np.max(v)),
        f"{prefix}_mean": float(np.mean(v)),
        f"{prefix}_median": float(np.median(v)),
        f"{prefix}_p99": float(np.percentile(v, 99)),
    }


def tensor_stats(ref: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    """Error statistics of `got` against `ref` (shapes must match)."""
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    diff = np.abs(ref64 - got64)
    rel = diff / np.maximum(np.abs(ref64), 1e-12)
    finite = np.isfinite(got64) | ~np.isfinite(ref64)
    if diff.size == 0 or np.all(np.isnan(diff)):
        nan = float("nan") if diff.size else 0.0
        return {
            "max_abs": nan,
            "mean_abs": nan,
            "median_abs": nan,
            "p99_abs": nan,
            "max_rel": nan,
            "mean_rel": nan,
            "median_rel": nan,
            "p99_rel": nan,
            "nonfinite": int((~finite).sum()),
            "size": int(diff.size),
        }
    return {
        "max_abs": float(np.nanmax(diff)),
        "mean_abs": float(np.nanmean(diff)),
        "median_abs": float(np.nanmedian(diff)),
        "p99_abs": float(np.nanpercentile(diff, 99)),
        "max_rel": float(np.nanmax(rel)),
        "mean_rel": float(np.nanmean(rel)),
        "median_rel": float(np.nanmedian(rel)),
        "p99_rel": float(np.nanpercentile(rel, 99)),
        "nonfinite": int((~finite).sum()),
        "size": int(diff.size),
    }


def failing_elements(ref: np.ndarray, got: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """The failure rule as a mask: beyond atol AND rtol*|ref|, or non-finite where ref is finite."""
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    diff = np.abs(ref64 - got64)
    bad = (diff > atol) & (diff > rtol * np.abs(ref64))
    return bad | (np.isnan(diff) & ~np.isnan(ref64)) | (~np.isfinite(got64) & np.isfinite(ref64))


def _fmt(v: Any) -> str:
    a = np.asarray(v, dtype=np.float64)
    return f"{float(a):.6g}" if a.ndim == 0 else "[" + ", ".join(f"{x:.6g}" for x in a.ravel()) + "]"


def worst_element(ref: np.ndarray, got: np.ndarray, bad: np.ndarray, err: np.ndarray) -> tuple[tuple[int, ...], float]:
    """The index of the worst failing element (NaN first), and its error."""
    score = np.where(bad, np.nan_to_num(err, nan=np.inf), -1.0)
    idx = np.unravel_index(int(np.argmax(score)), bad.shape)
    return tuple(int(i) for i in idx), float(err[idx])


def compare_tensor(name: str, ref: np.ndarray, got: np.ndarray, atol: float, rtol: float) -> dict[str, Any]:
    """One output compared element-wise: stats, the count of failing elements, the worst one, the verdict."""
    ref, got = np.asarray(ref), np.asarray(got)
    row = {"output": name, "kind": "tensor", "passed": False, "atol": atol, "rtol": rtol}
    if tuple(ref.shape) != tuple(got.shape):
        return {**row, "reason": f"shape {list(got.shape)} != reference {list(ref.shape)}"}
    stats = tensor_stats(ref, got)
    bad = failing_elements(ref, got, atol, rtol)
    failed = int(bad.sum())
    row.update(passed=failed == 0, failed_elements=failed, **stats)
    if failed:
        idx, err = worst_element(ref, got, bad, np.abs(ref.astype(np.float64) - got))
        row["reason"] = (
            f"{failed} of {stats['size']} elements beyond atol={atol:g} and rtol={rtol:g}; worst at "
            f"index {list(idx)}: got {_fmt(got[idx])} vs reference {_fmt(ref[idx])}, |diff| {err:.4g}"
        )
    return row


# --- one field's values against a rule ---------------------------------------------------------


def rule_of(role: str, unit: str) -> str:
    """The tolerance key judging a field's values (atol: the atol AND rtol rule)."""
    if role == "box":
        return "box_px"
    if role == "angle":
        return "angle_rad"
    if role == "mask":
        return "mask_iou"
    return "score_abs" if unit == "probability" else "atol"


def value_errors(ref: np.ndarray, got: np.ndarray, key: str, tol: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(error, failing mask) of same-shape values under one rule; non-finite results fail."""
    r, g = ref.astype(np.float64), got.astype(np.float64)
    err = np.abs(r - g)
    if key == "angle_rad":
        err = np.mod(err, np.pi)
        err = np.minimum(err, np.pi - err)
    if key == "atol":
        bad = failing_elements(r, g, tol["atol"], tol["rtol"])
    else:
        bad = ~(err <= tol[key]) & ~(np.isnan(r) & np.isnan(g))
    return err, bad


def _threshold(key: str, tol: dict[str, float]) -> str:
    if key == "atol":
        return f"atol={tol['atol']:g} and rtol={tol['rtol']:g}"
    return f"{key} {tol[key]:g} {UNIT_OF[key]}"


# --- raw heads -----------------------------------------------------------------------------------


def _bac(arr: np.ndarray, kind: dict[str, Any]) -> np.ndarray:
    """A raw head as (batch, anchors, channels)."""
    batched = kind.get("batch_axis", 0) is not None
    a = arr if batched else arr[None]
    shift = 0 if batched else 1
    if a.ndim != 3:
        raise FormatError(f"a raw head has 3 axes (batch, channels, anchors), got shape {list(arr.shape)}")
    return np.moveaxis(a, (kind.get("anchor_axis", 2) + shift, kind.get("channel_axis", 1) + shift), (1, 2))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64), -60, 60)))


def candidate_scores(bac: np.ndarray, groups: list[dict[str, Any]]) -> np.ndarray:
    """(batch, anchors) score of each candidate: its best class score (times a score group, if any)."""
    out = np.ones(bac.shape[:2])
    for g in groups:
        if g["role"] in ("score", "class_scores"):
            v = bac[..., g["start"] : g["stop"]].astype(np.float64)
            v = _sigmoid(v) if g["unit"] == "logit" else v
            out = out * np.max(v, axis=-1)
    return np.nan_to_num(out, nan=np.inf)


def _scale(values: np.ndarray, unit: str, image_hw: tuple[int, int] | None, what: str) -> np.ndarray:
    """Normalized x, y, x, y ... values to pixels (alternating W and H)."""
    if unit != "normalized":
        return values.astype(np.float64)
    if image_hw is None:
        raise FormatError(f"{what} is normalized: the comparison needs the input size")
    wh = np.resize(np.array([image_hw[1], image_hw[0]], np.float64), values.shape[-1])
    return values.astype(np.float64) * wh


def _group_arrays(
    g: dict[str, Any], ref: np.ndarray, got: np.ndarray, image_hw: Any
) -> list[tuple[str, Any, Any, str]]:
    """(part, ref, got, tolerance key) of one group, per anchor: values shaped (..., n)."""
    r, o = ref[..., g["start"] : g["stop"]], got[..., g["start"] : g["stop"]]
    if g["role"] == "box":
        return [("", _scale(r, g["unit"], image_hw, g["name"]), _scale(o, g["unit"], image_hw, g["name"]), "box_px")]
    if g["role"] != "keypoints":
        return [("", r, o, rule_of(g["role"], g["unit"]))]
    dims = g["dims"]
    rk, ok = r.reshape(*r.shape[:-1], -1, dims), o.reshape(*o.shape[:-1], -1, dims)
    rxy, oxy = _scale(rk[..., :2], g["unit"], image_hw, g["name"]), _scale(ok[..., :2], g["unit"], image_hw, g["name"])
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


def _raw_group(name: str, g: dict, ref: np.ndarray, got: np.ndarray, keep: np.ndarray, tol: dict, hw: Any) -> dict:
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
    for part, rv, ov, key in _group_arrays(g, ref, got, hw):
        err, bad = _part_errors(rv, ov, key, tol)
        mask = (
            np.ones(err.shape, bool)
            if scored
            else np.broadcast_to(keep.reshape(keep.shape + (1,) * (err.ndim - 2)), err.shape)
        )
        bad = bad & mask
        fig[f"{part or g['role']}_max" if part else "max"] = float(np.max(np.where(mask, err, 0), initial=0.0))
        fig[f"{part}_tolerance" if part else "tolerance"] = _threshold(key, tol)
        fig["failed"] += int(bad.sum())
        if bad.any():
            idx, e = worst_element(rv, ov, bad, err)
            where = f"image {idx[0]} anchor {idx[1]} {_channel_label(g, part, idx[2:])}"
            reasons.append(
                f"{name} group {g['name']} (channels {g['start']}-{g['stop'] - 1}, {g['unit']}): "
                f"{int(bad.sum())} value(s) beyond {_threshold(key, tol)}; worst: {where}: got "
                f"{_fmt(ov[idx])} vs reference {_fmt(rv[idx])}, error {e:.4g}"
            )
    return {"figures": fig, "reasons": reasons}


def compare_raw_head(
    name: str,
    ref: np.ndarray,
    got: np.ndarray,
    kind: dict[str, Any],
    tolerances: Any,
    image_hw: tuple[int, int] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One raw head, per channel group. Returns the row and what prototype masks need (scores, coefficients)."""
    row: dict[str, Any] = {"output": name, "kind": "raw_head", "passed": False}
    if tuple(np.shape(ref)) != tuple(np.shape(got)):
        return {**row, "reason": f"shape {list(np.shape(got))} != reference {list(np.shape(ref))}"}, {}
    try:
        r, o = _bac(np.asarray(ref), kind), _bac(np.asarray(got), kind)
    except FormatError as exc:
        return {**row, "reason": str(exc)}, {}
    groups = kind["groups"]
    min_score = resolve(tolerances, "min_score", name, None, kind)
    rs, os_ = candidate_scores(r, groups), candidate_scores(o, groups)
    keep = (rs >= min_score) | (os_ >= min_score) | _top(rs, MIN_CANDIDATES)
    row.update(
        min_score=min_score,
        candidates=int(keep.size),
        compared_candidates=int(keep.sum()),
        not_compared_below_min_score=int(keep.size - keep.sum()),
        groups={},
    )
    reasons = []
    for g in groups:
        tol = {k: resolve(tolerances, k, name, g["name"], kind) for k in TOLERANCE_KEYS}
        try:
            res = _raw_group(name, g, r, o, keep, tol, image_hw)
        except (FormatError, ValueError, IndexError) as exc:
            res = {"figures": {}, "reasons": [f"{name} group {g['name']}: {exc}"]}
        row["groups"][g["name"]] = res["figures"]
        reasons += res["reasons"]
    _headline(row)
    row["passed"] = not reasons
    if reasons:
        row["reason"] = "; ".join(reasons)
    return row, {"keep": keep, "scores": (rs, os_), "ref": r, "got": o}


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """(batch, anchors) mask of each image's k highest-scoring candidates."""
    out = np.zeros(scores.shape, bool)
    if scores.size:
        idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        np.put_along_axis(out, idx, True, axis=1)
    return out


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


# --- detections: reading -----------------------------------------------------------------------

_FIELD_RANK = {
    "box": 1,
    "score": 0,
    "class": 0,
    "class_scores": 1,
    "keypoints": 2,
    "keypoint_scores": 1,
    "mask_coefficients": 1,
    "angle": 0,
    "mask": None,
    "values": None,
}


def _per_image(arr: np.ndarray, kind: dict[str, Any]) -> list[np.ndarray]:
    """Split an output into per-image arrays by its batch axis (checking the rank its layout implies)."""
    batched = kind.get("batch_axis", 0) is not None
    rank = 1 if "columns" in kind else _FIELD_RANK[kind["field"]["role"]]
    if rank is not None and arr.ndim != rank + 1 + int(batched):
        raise FormatError(
            f"rank {arr.ndim} (shape {list(arr.shape)}) does not fit this output's semantics "
            f"({'rows' if 'columns' in kind else kind['field']['role']}, batch axis {kind.get('batch_axis')})"
        )
    return list(arr) if batched else [arr]


def _to_xyxy(box: np.ndarray, fmt: str) -> np.ndarray:
    if fmt == "xywh":
        return np.concatenate([box[:, :2], box[:, :2] + box[:, 2:]], axis=1)
    if fmt == "cxcywh":
        return np.concatenate([box[:, :2] - box[:, 2:] / 2, box[:, :2] + box[:, 2:] / 2], axis=1)
    return box


def _read_field(f: dict[str, Any], v: np.ndarray, hw: Any) -> dict[str, np.ndarray]:
    role, n = f["role"], len(v)
    if role == "box":
        if v.shape[-1] != 4:
            raise FormatError(f"box field has {v.shape[-1]} values per detection, not 4")
        return {"box": _to_xyxy(_scale(v, f["unit"], hw, "box"), f["format"])}
    if role == "keypoints":
        k = v.reshape(n, math.prod(v.shape[1:]) // f["dims"], f["dims"]).astype(np.float64)  # n may be 0
        k[..., :2] = _scale(k[..., :2], f["unit"], hw, "keypoints")
        return {"keypoints": k}
    if role == "class_scores":
        s = v.astype(np.float64)
        return {"score": np.max(s, axis=1, initial=-np.inf), "class": np.argmax(s, axis=1) if n else np.zeros(0, int)}
    if role == "mask":
        return {"mask": v.reshape(n, *v.shape[-2:]) if n else v.reshape(0, 1, 1)}
    return {
        f["name"] if role == "values" else role: v[:, 0] if role in ("score", "class", "angle") and v.ndim == 2 else v
    }


def _image_fields(kind: dict[str, Any], part: np.ndarray, hw: Any) -> dict[str, np.ndarray]:
    if "field" in kind:
        return _read_field(kind["field"], part, hw)
    if part.ndim != 2:
        raise FormatError(f"detection rows must be (N, C), got {list(part.shape)}")
    out: dict[str, np.ndarray] = {}
    for c in kind["columns"]:
        if c["stop"] > part.shape[1]:
            raise FormatError(
                f"{c['name']} columns [{c['start']}, {c['stop']}) beyond the rows' {part.shape[1]} columns"
            )
        out.update(_read_field(c, part[:, c["start"] : c["stop"]], hw))
    return out


def read_detections(
    arrays: dict[str, np.ndarray], kinds: dict[str, dict[str, Any]], image_hw: Any = None
) -> list[dict]:
    """One group's outputs -> per image {box (n, 4 xyxy px), score (n,), class?, keypoints?, ...}, padding dropped."""
    images: list[dict[str, np.ndarray]] | None = None
    for name, arr in arrays.items():
        parts = _per_image(np.asarray(arr), kinds[name])
        images = images or [{} for _ in parts]
        if len(parts) != len(images):
            raise FormatError(f"{name}: {len(parts)} images, other outputs of the group have {len(images)}")
        for img, part in zip(images, parts, strict=True):
            img.update(_image_fields(kinds[name], part, image_hw))
    return [_drop_padding(img) for img in images or []]


def _drop_padding(img: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if "box" not in img or "score" not in img:
        raise FormatError(f"a detection group needs a box and a score, got {sorted(img)}")
    n = {len(v) for v in img.values()}
    if len(n) != 1:
        raise FormatError(f"fields of one group have different row counts {sorted(n)}")
    real = ~((img["score"] == 0) & np.all(img["box"] == 0, axis=1))
    out = {k: np.asarray(v)[real] for k, v in img.items()}
    out["padding"] = np.array(int((~real).sum()))
    return out


# --- detections: matching and comparing --------------------------------------------------------


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (n,4) and (m,4) xyxy boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    same = (inter == 0) * np.all(a[:, None] == b[None], axis=2)
    return np.where(union > 0, inter / np.maximum(union, 1e-12), same)


def match_detections(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], iou_match: float) -> list[tuple[int, int]]:
    """Pairs (ref index, got index) of the same class with IoU >= iou_match, assigned greedily by IoU
    (closest scores break ties) over all candidate pairs, not by reference order: a detection whose
    twin is missing (cut at max_det, say) then stays unmatched instead of taking a neighbour's twin."""
    iou = np.nan_to_num(box_iou(ref["box"], got["box"]), nan=-1.0)
    if "class" in ref and "class" in got:
        iou = np.where(ref["class"][:, None] == got["class"][None, :], iou, -1.0)
    i_idx, j_idx = np.nonzero(iou >= iou_match)
    gap = np.abs(ref["score"][i_idx].astype(np.float64) - got["score"][j_idx])
    order = np.lexsort((np.nan_to_num(gap, nan=np.inf), -iou[i_idx, j_idx]))
    pairs, used_i, used_j = [], set(), set()
    for k in order:
        i, j = int(i_idx[k]), int(j_idx[k])
        if i not in used_i and j not in used_j:
            pairs.append((i, j))
            used_i.add(i)
            used_j.add(j)
    return sorted(pairs)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of pairs of boolean masks (n, h, w) (1.0 where both are empty)."""
    inter = np.logical_and(a, b).sum(axis=(1, 2))
    union = np.logical_or(a, b).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def _pair_values(
    field: str, spec: dict[str, Any], r: np.ndarray, g: np.ndarray, tol: dict, ties: Any = None
) -> list[tuple[str, Any, Any, Any]]:
    """(label, per-pair error, failing mask, key) of one field over matched pairs (rows: pairs);
    `ties` (pairs, K): keypoints at tied heatmap peaks (`keypoint_ties`), judged apart."""
    if field == "box":
        err = np.abs(r - g).max(axis=1, initial=0.0)
        return [("box", err, ~(err <= tol["box_px"]), "box_px")]
    if field == "keypoints":
        rk, gk = r.astype(np.float64), g.astype(np.float64)
        dist = np.linalg.norm(rk[..., :2] - gk[..., :2], axis=-1)
        dist = np.where(ties, 0.0, dist) if ties is not None else dist
        dist = dist.max(axis=1, initial=0.0)
        out = [("keypoints", dist, ~(dist <= tol["keypoints_px"]), "keypoints_px")]
        if rk.shape[-1] > 2:
            key = rule_of("score", spec.get("visibility", "probability"))
            e, bad = value_errors(rk[..., 2], gk[..., 2], key, tol)
            out.append(("kpt_conf", e.max(axis=1, initial=0.0), bad.any(axis=1), key))
        return out
    if field == "mask":
        rp, gp = r.astype(np.float64), g.astype(np.float64)
        iou = logit_iou(np.log(np.clip(rp, 1e-12, 1)) - np.log(np.clip(1 - rp, 1e-12, 1)), gp - 0.5)
        return [("mask", iou, ~(iou >= tol["mask_iou"]), "mask_iou")]
    role = spec.get("role", field)
    key = rule_of(role, spec.get("unit", "probability" if field == "score" else "none"))
    e, bad = value_errors(r, g, key, tol)
    flat = lambda x: x.reshape(len(x), -1) if x.size else np.zeros((len(x), 1))  # noqa: E731
    return [
        (
            spec["name"] if role == "values" else field,
            flat(e).max(axis=1, initial=0.0),
            flat(bad).any(axis=1),
            key,
        )
    ]


TIE_SHARE = 0.01
"""At most this share of the compared keypoints (and at least one) may sit at tied heatmap peaks."""


def keypoint_ties(r: dict[str, np.ndarray], g: dict[str, np.ndarray], tol: dict) -> np.ndarray | None:
    """(pairs, K) True where a matched detection's keypoint moved beyond keypoints_px to a heatmap peak
    of the same height (its keypoint score within the score rule): argmax decoding jumps between two
    near-equal maxima on noise a thousand times below any tolerance (Keypoint R-CNN's heatmaps), a
    discontinuity, not an export error. None without keypoint scores on both sides (nothing is tied).
    A decoding error moves many keypoints, a tie one: ties beyond TIE_SHARE fail (`detection_failures`)."""
    if "keypoint_scores" not in r or "keypoint_scores" not in g or r["keypoints"].shape != g["keypoints"].shape:
        return None
    rk, gk = r["keypoints"].astype(np.float64), g["keypoints"].astype(np.float64)
    moved = ~(np.linalg.norm(rk[..., :2] - gk[..., :2], axis=-1) <= tol["keypoints_px"])
    rs, gs = r["keypoint_scores"], g["keypoint_scores"]
    if rs.shape != moved.shape or gs.shape != moved.shape:
        return None
    return moved & ~failing_elements(rs.astype(np.float64), gs.astype(np.float64), tol["atol"], tol["rtol"])


_FIGURE = {
    "box": "box_px",
    "score": "score_abs",
    "keypoints": "keypoints_px",
    "kpt_conf": "kpt_conf_abs",
    "mask_coefficients": "mask_coefficients_abs",
    "angle": "angle_rad",
    "mask": "mask_iou",
}


def _unmatched(dets: dict[str, np.ndarray], used: set[int], min_score: float, image: int) -> tuple[list[dict], int]:
    """Unmatched detections at or above min_score (described), and the count of ignored ones below."""
    rows, ignored = [], 0
    for k in range(len(dets["score"])):
        if k in used:
            continue
        score = float(dets["score"][k])
        if score < min_score:
            ignored += 1
            continue
        cls = int(dets["class"][k]) if "class" in dets and np.isfinite(dets["class"][k]) else None
        rows.append(
            {
                "image": image,
                "index": k,
                "score": score,
                "class": cls,
                "box": [round(float(v), 2) for v in dets["box"][k]],
            }
        )
    return rows, ignored


class _Collect:
    """Per-pair errors of every field over all images, the worst failing pair per field, unmatched counts."""

    def __init__(self, specs: dict[str, dict[str, Any]], tol: dict[str, float]) -> None:
        self.specs, self.tol = specs, tol
        self.errs: dict[str, list[float]] = {}
        self.fails: dict[str, list] = {}
        self.counts = {"matched": 0, "ignored_below_min_score": 0, "padding_ref": 0, "padding_got": 0}
        self.miss: dict[str, list[dict]] = {"ref": [], "got": []}
        self.pairs: list[list[tuple[int, int]]] = []
        self.ties: list[dict[str, Any]] = []
        self.keypoints = 0

    def image(self, b: int, r: dict[str, np.ndarray], g: dict[str, np.ndarray]) -> None:
        pairs = match_detections(r, g, self.tol["iou_match"])
        if "score" in r and "score" in g:  # pairs scoring below min_score on both sides are not detections
            low = self.tol["min_score"]
            kept = [(a, c) for a, c in pairs if r["score"][a] >= low or g["score"][c] >= low]
            self.counts["ignored_below_min_score"] += 2 * (len(pairs) - len(kept))
            pairs = kept
        self.pairs.append(pairs)
        self.counts["matched"] += len(pairs)
        self.counts["padding_ref"] += int(r["padding"])
        self.counts["padding_got"] += int(g["padding"])
        i = np.array([p[0] for p in pairs], dtype=int)
        j = np.array([p[1] for p in pairs], dtype=int)
        ties = self._ties(b, r, g, i, j)
        for field in sorted(set(r) & set(g) - {"padding", "class"}):
            for label, err, bad, key in _pair_values(
                field, self.specs.get(field, {}), r[field][i], g[field][j], self.tol, ties
            ):
                self.errs.setdefault(label, []).extend(np.asarray(err, np.float64).tolist())
                for k in np.nonzero(bad)[0]:
                    self.fails.setdefault(label, []).append((float(err[k]), b, int(i[k]), int(j[k]), field, key))
        for side, dets, used in (("ref", r, set(i.tolist())), ("got", g, set(j.tolist()))):
            rows, ignored = _unmatched(dets, used, self.tol["min_score"], b)
            self.miss[side] += rows
            self.counts["ignored_below_min_score"] += ignored

    def _ties(self, b: int, r: dict, g: dict, i: np.ndarray, j: np.ndarray) -> np.ndarray | None:
        if "keypoints" not in r or "keypoints" not in g:
            return None
        keys = ("keypoints", "keypoint_scores")
        rp, gp = ({k: d[k][n] for k in keys if k in d} for d, n in ((r, i), (g, j)))
        self.keypoints += int(np.prod(rp["keypoints"].shape[:2]))
        ties = keypoint_ties(rp, gp, self.tol)
        for p, k in zip(*np.nonzero(ties), strict=True) if ties is not None else ():
            ref, got = ([round(float(v), 2) for v in d["keypoints"][p, k, :2]] for d in (rp, gp))
            self.ties.append({"image": b, "index": int(i[p]), "keypoint": int(k), "ref": ref, "got": got})
        return ties

    def figures(self) -> dict[str, Any]:
        figs: dict[str, Any] = {
            **self.counts,
            "unmatched_ref": len(self.miss["ref"]),
            "unmatched_got": len(self.miss["got"]),
            "unmatched_examples": {"ref": self.miss["ref"][:5], "got": self.miss["got"][:5]},
        }
        if self.keypoints:
            figs.update(keypoints_compared=self.keypoints, keypoint_ties=len(self.ties), tie_examples=self.ties[:5])
        for label, vals in self.errs.items():
            figs.update(quantiles(np.asarray(vals), _FIGURE.get(label, f"{label}_err")))
        return figs


def detection_failures(name: str, c: _Collect, ref_imgs: list, got_imgs: list) -> list[str]:
    """The verdict's reasons: each names the field, the detection, both values, the tolerance and unit."""
    out = []
    for side, what in (("ref", "reference"), ("got", "result")):
        if c.miss[side]:
            best = max(c.miss[side], key=lambda d: d["score"])
            out.append(
                f"unmatched_{side} {len(c.miss[side])} > 0: {what} detections without a match at "
                f"iou_match={c.tol['iou_match']:g} (e.g. image {best['image']} detection {best['index']}: "
                f"score {best['score']:.3f}, class {best['class']}, box {best['box']})"
            )
    allowed = max(1, int(TIE_SHARE * c.keypoints))
    if len(c.ties) > allowed:
        t = c.ties[0]
        out.append(
            f"keypoint_ties {len(c.ties)} > {allowed} ({TIE_SHARE:.0%} of {c.keypoints} keypoints): keypoints at "
            f"another peak of the same height, too many to be argmax ties (e.g. image {t['image']} detection "
            f"{t['index']} keypoint {t['keypoint']}: got {t['got']} vs reference {t['ref']})"
        )
    for label, fails in c.fails.items():
        worst = max(fails, key=lambda f: np.nan_to_num(f[0], nan=np.inf) * (-1 if f[5] == "mask_iou" else 1))
        err, b, i, j, field, key = worst
        rv, gv = ref_imgs[b][field][i], got_imgs[b][field][j]
        shown = "" if field == "mask" else f": got {_fmt(gv)} vs reference {_fmt(rv)}"
        figure = "IoU" if key == "mask_iou" else "error"
        out.append(
            f"{name} field {label}: {len(fails)} matched detection(s) beyond {_threshold(key, c.tol)}; "
            f"worst: image {b} detection {i} (result row {j}){shown}, {figure} {err:.4g}"
        )
    return out


def compare_detections(
    ref: Any,
    got: Any,
    kind: dict[str, Any],
    tolerances: Any = None,
    name: str = "detections",
    image_hw: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Match and compare one detection list. `ref`/`got`: an array with `kind` its semantics, or dicts
    output name -> array with `kind` a dict output name -> semantics (a group of outputs)."""
    return _detections(ref, got, kind, tolerances, name, image_hw)[0]


def _detections(ref: Any, got: Any, kind: dict, tolerances: Any, name: str, image_hw: Any) -> tuple[dict, Any]:
    if not isinstance(ref, dict):
        ref, got, kind = {name: ref}, {name: got}, {name: kind}
    first = next(iter(kind.values()))
    tol = {k: resolve(tolerances, k, name, None, first) for k in TOLERANCE_KEYS}
    specs = {
        f["role"] if f["role"] != "values" else f["name"]: f
        for k in kind.values()
        for f in (k.get("columns") or [k.get("field")])
    }
    row: dict[str, Any] = {
        "output": name,
        "kind": "detections",
        "outputs": list(kind),
        "passed": False,
        **{k: tol[k] for k in TOLERANCE_KEYS},
    }
    try:
        ref_imgs, got_imgs = read_detections(ref, kind, image_hw), read_detections(got, kind, image_hw)
    except (FormatError, KeyError, IndexError, ValueError) as exc:
        return {**row, "reason": f"cannot read detections: {exc}"}, None
    if len(ref_imgs) != len(got_imgs):
        return {**row, "reason": f"{len(got_imgs)} images != reference {len(ref_imgs)}"}, None
    c = _Collect(specs, tol)
    for b, (r, g) in enumerate(zip(ref_imgs, got_imgs, strict=True)):
        c.image(b, r, g)
    row.update(c.figures())
    reasons = detection_failures(name, c, ref_imgs, got_imgs)
    row["passed"] = not reasons
    if reasons:
        row["reason"] = "; ".join(reasons)
    return row, {"pairs": c.pairs, "ref": ref_imgs, "got": got_imgs}


# --- prototype masks -----------------------------------------------------------------------------


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
        boxes = _to_xyxy(ctx["ref"][b, idx, bg["start"] : bg["stop"]].astype(np.float64), bg["format"])
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


# --- every output --------------------------------------------------------------------------------


def _simple(name: str, ref: Any, got: Any, kind: dict, tolerances: Any) -> dict[str, Any]:
    ref, got = np.asarray(ref), np.asarray(got)
    if kind.get("kind") == "class_scores" and kind.get("unit") == "probability":
        tol = resolve(tolerances, "score_abs", name, None, kind)
        row = compare_tensor(name, ref, got, tol, 0.0)
        row.update(kind="class_scores", unit="probability", score_abs=tol)
        row.pop("atol"), row.pop("rtol")
        if "reason" in row:
            row["reason"] = row["reason"].replace(f"atol={tol:g} and rtol=0", f"score_abs {tol:g} abs")
        return row
    row = compare_tensor(
        name, ref, got, resolve(tolerances, "atol", name, None, kind), resolve(tolerances, "rtol", name, None, kind)
    )
    row["kind"] = kind.get("kind", "tensor")
    return row


def compare_outputs(
    names: list[str],
    refs: list[Any],
    gots: list[Any],
    kinds: dict[str, dict[str, Any]] | None,
    tolerances: Any,
    image_hw: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """Every output compared by its semantics: one row per tensor, raw head or prototype output and one
    per detection group. `image_hw`: the input's (H, W), for normalized coordinates and mask crops."""
    kinds = kinds or {}
    rows: list[dict[str, Any]] = []
    groups: dict[str, list[int]] = {}
    ctx: dict[str, Any] = {}
    protos = []
    for k, name in enumerate(names):
        kind = kinds.get(name) or {"kind": "tensor"}
        what = kind.get("kind")
        if what == "detections":
            groups.setdefault(str(kind.get("group") or name), []).append(k)
        elif what == "raw_head":
            row, ctx[name] = compare_raw_head(name, refs[k], gots[k], kind, tolerances, image_hw)
            rows.append(row)
        elif what == "prototype_masks":
            protos.append(k)
        elif what in ("tensor", "class_scores"):
            rows.append(_simple(name, refs[k], gots[k], kind, tolerances))
        else:
            rows.append(
                {
                    "output": name,
                    "kind": str(what),
                    "passed": False,
                    "reason": f"unknown output kind {what!r} ({', '.join(KINDS)})",
                }
            )
    for group, idx in groups.items():
        row, dctx = _detections(
            {names[k]: refs[k] for k in idx},
            {names[k]: gots[k] for k in idx},
            {names[k]: kinds[names[k]] for k in idx},
            tolerances,
            group,
            image_hw,
        )
        rows.append(row)
        for k in idx:
            ctx[names[k]] = dctx
    for k in protos:
        kind = kinds[names[k]]
        coef_kind = kinds.get(kind["coefficients"], {})
        rows.append(
            compare_prototypes(
                names[k], refs[k], gots[k], kind, coef_kind, ctx.get(kind["coefficients"]), tolerances, image_hw
            )
        )
    return rows


def detection_counts(
    names: list[str],
    outs: list[Any],
    kinds: dict[str, dict[str, Any]] | None,
    score_of: Any,
    image_hw: tuple[int, int] | None = None,
) -> int | None:
    """How many detections (raw-head candidates) score >= score_of(name, kind) over all images and
    outputs; None when no output is a raw head or detections (nothing can be counted)."""
    kinds, total, found = kinds or {}, 0, False
    groups: dict[str, list[int]] = {}
    for k, name in enumerate(names):
        kind = kinds.get(name) or {}
        if kind.get("kind") == "raw_head":
            found = True
            scores = candidate_scores(_bac(np.asarray(outs[k]), kind), kind["groups"])
            total += int((scores >= score_of(name, kind)).sum())
        elif kind.get("kind") == "detections":
            groups.setdefault(str(kind.get("group") or name), []).append(k)
    for group, idx in groups.items():
        found = True
        imgs = read_detections({names[k]: outs[k] for k in idx}, {names[k]: kinds[names[k]] for k in idx}, image_hw)
        threshold = score_of(group, kinds[names[idx[0]]])
        total += sum(int((img["score"] >= threshold).sum()) for img in imgs)
    return total if found else None
