"""Output comparison with per-output tolerances and error statistics (numpy only).

Kept free of recipekit imports on purpose: the Jetson bundle copies this file next to its check
program, so the device compares exactly as the gates do here.

Raw tensors. Failure rule (as Polygraphy's): an element fails when |a-b| > atol AND
|a-b| > rtol*|ref|; NaN or Inf in the result where the reference is finite fails. Tolerances are a
scalar or a per-output dict whose "" key is the default.

Detections. Post-NMS outputs cannot be compared row by row: two near-equal scores may swap rows,
and padding rows carry no meaning. They are matched instead (same class, IoU >= iou_match, greedy
by IoU over all pairs) and compared in pixels. `output_kinds[name]` describes an output:

  {"kind": "tensor"}                       compared element-wise (also the default)
  {"kind": "detections", ...}              one output holding (part of) a detection list

A detections output is read in one of two ways:
  columns: rows (B, N, C) or (N, C) whose last axis packs fields:
    "box": start column, or [start, stop] with stop - start == 4
    "score": column, "class": column (absent: class-agnostic, e.g. RTMO's person-only dets)
    "keypoints": [start, K, D] (K keypoints of D = 2 (x, y) or 3 (x, y, conf) values)
    "extras": [start, stop] (e.g. mask coefficients; compared with atol/rtol on matched rows)
    e.g. Ultralytics nms=True pose: {"kind": "detections", "box": [0, 4], "score": 4, "class": 5,
    "keypoints": [6, 17, 3]}
  field: the whole output is one field of every detection: {"kind": "detections", "field": F}
    with F in box (N, 4), score (N,), class (N,), keypoints (N, K, D), extras (N, E).
Outputs with the same "group" (default: the output's own name) form one detection list, e.g.
torchvision: boxes {"field": "box", "group": "dets"}, scores {"field": "score", "group": "dets"},
labels {"field": "class", "group": "dets"}; mmpose RTMO: dets (B, N, 5) {"box": [0, 4], "score": 4,
"group": "dets"} and keypoints (B, N, 17, 3) {"field": "keypoints", "group": "dets"}.
A leading batch axis is read from the rank (one more than the unbatched rank); "batched": true/false
overrides. "box_format": "xyxy" (default), "xywh" or "cxcywh". Rows whose box and score are all
zero are padding and ignored. Per-group tolerances are keyed by the group name.

Detection failure rule: every reference and every result detection scoring >= min_score must be
matched; on matched pairs the largest box coordinate error must be <= box_px, the largest keypoint
distance <= keypoints_px, score and keypoint-confidence errors <= score_abs. NaN fails.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DETECTION_TOLERANCES: dict[str, float] = {
    "box_px": 1.0,
    "keypoints_px": 1.0,
    "score_abs": 0.01,
    "iou_match": 0.5,
    "min_score": 0.0,
    "atol": 1e-3,
    "rtol": 1e-3,
}
"""Defaults for detection comparisons (pixels for boxes and keypoints; absolute for scores)."""

_FIELD_RANK = {"box": 1, "score": 0, "class": 0, "keypoints": 2, "extras": 1}


def tolerance(value: float | dict[str, float], output: str) -> float:
    """A scalar tolerance, or the per-output one (key "" is the default)."""
    if isinstance(value, dict):
        return float(value.get(output, value.get("", 0.0)))
    return float(value)


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
    if diff.size == 0:
        return {
            "max_abs": 0.0,
            "mean_abs": 0.0,
            "median_abs": 0.0,
            "p99_abs": 0.0,
            "max_rel": 0.0,
            "mean_rel": 0.0,
            "median_rel": 0.0,
            "p99_rel": 0.0,
            "nonfinite": 0,
            "size": 0,
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
    return bad | (~np.isfinite(got64) & np.isfinite(ref64))


def compare_tensor(name: str, ref: np.ndarray, got: np.ndarray, atol: float, rtol: float) -> dict[str, Any]:
    """One output compared element-wise: stats, the count of failing elements, and the verdict."""
    if tuple(ref.shape) != tuple(got.shape):
        return {
            "output": name,
            "kind": "tensor",
            "passed": False,
            "atol": atol,
            "rtol": rtol,
            "reason": f"shape {list(got.shape)} != reference {list(ref.shape)}",
        }
    stats = tensor_stats(ref, got)
    failed = int(failing_elements(ref, got, atol, rtol).sum())
    out = {
        "output": name,
        "kind": "tensor",
        "passed": failed == 0,
        "atol": atol,
        "rtol": rtol,
        "failed_elements": failed,
        **stats,
    }
    if failed:
        out["reason"] = (
            f"{failed} of {stats['size']} elements beyond atol={atol} and rtol={rtol} "
            f"(max_abs {stats['max_abs']:.4g}, max_rel {stats['max_rel']:.4g})"
        )
    return out


# --- detections: reading ---------------------------------------------------------------------


class DetectionFormatError(ValueError):
    """An output does not have the layout its output_kinds entry describes."""


def _span(spec: Any, width: int, what: str) -> tuple[int, int]:
    """A column span from a start column or [start, stop]; checks the width."""
    start, stop = (spec, spec + width) if isinstance(spec, int) else (int(spec[0]), int(spec[1]))
    if width and stop - start != width:
        raise DetectionFormatError(f"{what} span {spec} must cover {width} columns")
    return start, stop


def _columns(rows: np.ndarray, kind: dict[str, Any]) -> dict[str, np.ndarray]:
    """Fields of (n, C) rows as described by a columns kind."""
    out: dict[str, np.ndarray] = {}
    if "box" in kind:
        a, b = _span(kind["box"], 4, "box")
        out["box"] = rows[:, a:b]
    for key in ("score", "class"):
        if key in kind:
            out[key] = rows[:, int(kind[key])]
    if "keypoints" in kind:
        start, k, d = (int(v) for v in kind["keypoints"])
        out["keypoints"] = rows[:, start : start + k * d].reshape(len(rows), k, d)
    if "extras" in kind:
        a, b = _span(kind["extras"], 0, "extras")
        out["extras"] = rows[:, a:b]
    return out


def _per_image(arr: np.ndarray, kind: dict[str, Any]) -> list[np.ndarray]:
    """Split an output into per-image arrays, by the rank its kind implies (or "batched")."""
    rank = _FIELD_RANK[kind["field"]] if "field" in kind else 1
    batched = kind.get("batched", arr.ndim == rank + 2)
    if arr.ndim != rank + 1 + int(batched):
        raise DetectionFormatError(f"rank {arr.ndim} (shape {list(arr.shape)}) does not fit {kind}")
    return list(arr) if batched else [arr]


def _to_xyxy(box: np.ndarray, fmt: str) -> np.ndarray:
    if fmt == "xyxy":
        return box
    if fmt == "xywh":
        return np.concatenate([box[:, :2], box[:, :2] + box[:, 2:]], axis=1)
    if fmt == "cxcywh":
        return np.concatenate([box[:, :2] - box[:, 2:] / 2, box[:, :2] + box[:, 2:] / 2], axis=1)
    raise DetectionFormatError(f"unknown box_format {fmt!r} (xyxy, xywh, cxcywh)")


def read_detections(arrays: dict[str, np.ndarray], kinds: dict[str, dict[str, Any]]) -> list[dict[str, np.ndarray]]:
    """One group's outputs -> per image {box (n,4 xyxy), score (n,), class?, keypoints?, extras?}, padding dropped."""
    images: list[dict[str, np.ndarray]] | None = None
    for name, arr in arrays.items():
        kind = kinds[name]
        parts = _per_image(np.asarray(arr), kind)
        images = images or [{} for _ in parts]
        if len(parts) != len(images):
            raise DetectionFormatError(f"{name}: {len(parts)} images, other outputs of the group have {len(images)}")
        for img, part in zip(images, parts, strict=True):
            fields = {kind["field"]: part} if "field" in kind else _columns(part, kind)
            if "box" in fields:
                fields["box"] = _to_xyxy(fields["box"].astype(np.float64), kind.get("box_format", "xyxy"))
            img.update(fields)
    return [_drop_padding(img) for img in images or []]


def _drop_padding(img: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if "box" not in img or "score" not in img:
        raise DetectionFormatError(f"a detection group needs a box and a score, got {sorted(img)}")
    n = {len(v) for v in img.values()}
    if len(n) != 1:
        raise DetectionFormatError(f"fields of one group have different row counts {sorted(n)}")
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
    return np.where(union > 0, inter / np.maximum(union, 1e-12), (inter == 0) * np.all(a[:, None] == b[None], axis=2))


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


def _pair_errors(
    ref: dict[str, np.ndarray], got: dict[str, np.ndarray], pairs: list[tuple[int, int]]
) -> dict[str, np.ndarray]:
    """Per matched pair: box_px (largest coordinate error), score_abs, keypoints_px (largest
    keypoint distance), kpt_conf_abs, extras elements failing atol/rtol (set later)."""
    i = np.array([p[0] for p in pairs], dtype=int)
    j = np.array([p[1] for p in pairs], dtype=int)
    err = {
        "box_px": np.abs(ref["box"][i] - got["box"][j]).max(axis=1, initial=0.0),
        "score_abs": np.abs(ref["score"][i].astype(np.float64) - got["score"][j]),
    }
    if "keypoints" in ref and "keypoints" in got:
        rk, gk = ref["keypoints"][i].astype(np.float64), got["keypoints"][j].astype(np.float64)
        err["keypoints_px"] = np.linalg.norm(rk[..., :2] - gk[..., :2], axis=-1).max(axis=1, initial=0.0)
        if rk.shape[-1] > 2:
            err["kpt_conf_abs"] = np.abs(rk[..., 2] - gk[..., 2]).max(axis=1, initial=0.0)
    return err


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


def _collect(ref_imgs: list[dict], got_imgs: list[dict], tol: dict[str, float]) -> dict[str, Any]:
    """Match every image, gather per-pair errors and unmatched detections (computing, no verdict)."""
    errs: dict[str, list] = {}
    where: list[tuple[int, int]] = []
    miss_ref: list[dict] = []
    miss_got: list[dict] = []
    counts = {"matched": 0, "ignored_below_min_score": 0, "padding_ref": 0, "padding_got": 0, "extras_failed": 0}
    for b, (r, g) in enumerate(zip(ref_imgs, got_imgs, strict=True)):
        pairs = match_detections(r, g, tol["iou_match"])
        counts["matched"] += len(pairs)
        counts["padding_ref"] += int(r["padding"])
        counts["padding_got"] += int(g["padding"])
        for key, vals in _pair_errors(r, g, pairs).items():
            errs.setdefault(key, []).extend(vals.tolist())
        where += [(b, i) for i, _ in pairs]
        if pairs and "extras" in r and "extras" in g:
            i, j = (list(k) for k in zip(*pairs, strict=True))
            bad = failing_elements(r["extras"][i], g["extras"][j], tol["atol"], tol["rtol"])
            counts["extras_failed"] += int(bad.sum())
        for dets, used, sink in ((r, {p[0] for p in pairs}, miss_ref), (g, {p[1] for p in pairs}, miss_got)):
            rows, ignored = _unmatched(dets, used, tol["min_score"], b)
            sink += rows
            counts["ignored_below_min_score"] += ignored
    figs: dict[str, Any] = {
        **counts,
        "unmatched_ref": len(miss_ref),
        "unmatched_got": len(miss_got),
        "unmatched_examples": {"ref": miss_ref[:5], "got": miss_got[:5]},
        "worst": {},
    }
    for key, vals in errs.items():
        arr = np.asarray(vals, dtype=np.float64)
        figs.update(quantiles(arr, key))
        if arr.size:
            k = int(np.argmax(np.nan_to_num(arr, nan=np.inf)))
            figs["worst"][key] = {"value": float(arr[k]), "image": where[k][0], "ref_index": where[k][1]}
    return figs


_FIGURE_TOLERANCE = {
    "box_px": "box_px",
    "score_abs": "score_abs",
    "keypoints_px": "keypoints_px",
    "kpt_conf_abs": "score_abs",
}


def detection_failures(figs: dict[str, Any], tol: dict[str, float]) -> list[str]:
    """The verdict's reasons: each names the figure, its value and the threshold (NaN fails)."""
    out = []
    for side, what in (("ref", "reference"), ("got", "result")):
        if figs[f"unmatched_{side}"]:
            best = max(figs["unmatched_examples"][side], key=lambda d: d["score"])
            out.append(
                f"unmatched_{side} {figs[f'unmatched_{side}']} > 0: {what} detections without a match "
                f"at iou_match={tol['iou_match']} (e.g. score {best['score']:.3f}, class {best['class']}, "
                f"box {best['box']})"
            )
    for fig, key in _FIGURE_TOLERANCE.items():
        value = figs.get(f"{fig}_max")
        if value is not None and not value <= tol[key]:
            w = figs["worst"].get(fig, {})
            out.append(
                f"max {fig} {value:.4g} > {key} {tol[key]:g} (image {w.get('image')}, detection {w.get('ref_index')})"
            )
    if figs["extras_failed"]:
        out.append(f"extras_failed {figs['extras_failed']} elements beyond atol={tol['atol']} and rtol={tol['rtol']}")
    return out


def compare_detections(
    ref: Any, got: Any, kind: dict[str, Any], tolerances: dict[str, float] | None = None, name: str = "detections"
) -> dict[str, Any]:
    """Match and compare one detection list. `ref`/`got`: an array with `kind` its output_kinds entry,
    or dicts output name -> array with `kind` a dict output name -> entry (a group of outputs).
    `tolerances`: scalars overriding DETECTION_TOLERANCES."""
    tol = {**DETECTION_TOLERANCES, **(tolerances or {})}
    if not isinstance(ref, dict):
        ref, got, kind = {name: ref}, {name: got}, {name: kind}
    row: dict[str, Any] = {
        "output": name,
        "kind": "detections",
        "outputs": list(kind),
        "passed": False,
        **{k: tol[k] for k in DETECTION_TOLERANCES},
    }
    try:
        ref_imgs, got_imgs = read_detections(ref, kind), read_detections(got, kind)
    except (DetectionFormatError, KeyError, IndexError, ValueError) as exc:
        return {**row, "reason": f"cannot read detections: {exc}"}
    if len(ref_imgs) != len(got_imgs):
        return {**row, "reason": f"{len(got_imgs)} images != reference {len(ref_imgs)}"}
    row.update(_collect(ref_imgs, got_imgs, tol))
    reasons = detection_failures(row, tol)
    row["passed"] = not reasons
    if reasons:
        row["reason"] = "; ".join(reasons)
    return row


def compare_outputs(
    names: list[str],
    refs: list[np.ndarray],
    gots: list[np.ndarray],
    kinds: dict[str, dict[str, Any]] | None,
    tolerances: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """Every output compared by its kind: one row per tensor output, one per detection group.

    `tolerances`: {"atol", "rtol", "box_px", "keypoints_px", "score_abs", "iou_match", "min_score"},
    each a scalar or a per-output (per-group) dict with "" as default; missing keys take defaults.
    """
    kinds, tolerances = kinds or {}, tolerances or {}
    rows: list[dict[str, Any]] = []
    groups: dict[str, list[int]] = {}
    for k, name in enumerate(names):
        kind = kinds.get(name) or {"kind": "tensor"}
        if kind.get("kind") == "detections":
            groups.setdefault(str(kind.get("group", name)), []).append(k)
        elif kind.get("kind") == "tensor":
            rows.append(
                compare_tensor(
                    name,
                    np.asarray(refs[k]),
                    np.asarray(gots[k]),
                    resolve(tolerances, "atol", name),
                    resolve(tolerances, "rtol", name),
                )
            )
        else:
            rows.append(
                {
                    "output": name,
                    "kind": str(kind.get("kind")),
                    "passed": False,
                    "reason": f"unknown output kind {kind.get('kind')!r} (tensor, detections)",
                }
            )
    for group, idx in groups.items():
        tol = {key: resolve(tolerances, key, group) for key in DETECTION_TOLERANCES}
        rows.append(
            compare_detections(
                {names[k]: refs[k] for k in idx},
                {names[k]: gots[k] for k in idx},
                {names[k]: kinds[names[k]] for k in idx},
                tol,
                name=group,
            )
        )
    return rows


def resolve(tolerances: dict[str, Any], key: str, output: str) -> float:
    """One tolerance for one output: the configured scalar or per-output value, else the default."""
    value = tolerances.get(key)
    if value is None or (isinstance(value, dict) and output not in value and "" not in value):
        return DETECTION_TOLERANCES[key]
    return tolerance(value, output)
