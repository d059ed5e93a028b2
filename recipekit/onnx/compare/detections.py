"""Detections after NMS (or a top-k head): read per image, matched, compared field by field.

Reading: an output is rows (B, N, C) or (N, C) packing fields in `columns`, or one whole-output
`field` of every detection (torchvision's boxes (N, 4), scores (N,), labels (N,), masks (N, 1, H, W));
outputs sharing a `group` form one list. Rows whose box and score are all zero are padding.

Matching: same class, IoU >= iou_match, greedily by IoU over all pairs; every reference and result
detection scoring >= min_score must find a match; fields are compared on matched pairs in their own
units (box_px, keypoints_px, score_abs, angle_rad, mask_iou, atol AND rtol). A list at its declared
cap (`max_detections`: the model keeps at most that many, so which near-equal last detections
survive is the ranking of cut-off scores, not the export) is compared on the detections whose
scores stand clear of the cut: min_score is raised to the lowest kept score + score_abs for that
image, and the figures count the images at the cap and the detections left out near the cut.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .masks import logit_iou
from .raw_heads import scale as _scale
from .raw_heads import to_xyxy
from .tensors import failing_elements, quantiles, rule_of, value_errors
from .tensors import fmt as _fmt
from .tolerances import FormatError, all_of, threshold_text

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


def _read_field(f: dict[str, Any], v: np.ndarray, hw: Any) -> dict[str, np.ndarray]:
    role, n = f["role"], len(v)
    if role == "box":
        if v.shape[-1] != 4:
            raise FormatError(f"box field has {v.shape[-1]} values per detection, not 4")
        return {"box": to_xyxy(_scale(v, f["unit"], hw, "box"), f["format"])}
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

    def __init__(self, specs: dict[str, dict[str, Any]], tol: dict[str, float], cap: int | None = None) -> None:
        self.specs, self.tol, self.cap = specs, tol, cap
        self.errs: dict[str, list[float]] = {}
        self.fails: dict[str, list] = {}
        self.counts = {"matched": 0, "ignored_below_min_score": 0, "padding_ref": 0, "padding_got": 0}
        self.at_cap: list[dict[str, Any]] = []
        self.miss: dict[str, list[dict]] = {"ref": [], "got": []}
        self.pairs: list[list[tuple[int, int]]] = []
        self.ties: list[dict[str, Any]] = []
        self.keypoints = 0

    def _low(self, b: int, r: dict[str, np.ndarray], g: dict[str, np.ndarray]) -> float:
        """min_score for image b: raised clear of the cut when either side holds `cap` detections."""
        low = self.tol["min_score"]
        full = [d["score"] for d in (r, g) if self.cap is not None and len(d["score"]) >= self.cap]
        if not full:
            return low
        cut = max(float(np.min(s)) for s in full) + self.tol["score_abs"]
        near = int(sum(((d["score"] >= low) & (d["score"] < cut)).sum() for d in (r, g)))
        self.at_cap.append({"image": b, "cap": self.cap, "cut": round(cut, 4), "left_out_near_cut": near})
        return max(low, cut)

    def image(self, b: int, r: dict[str, np.ndarray], g: dict[str, np.ndarray]) -> None:
        pairs = match_detections(r, g, self.tol["iou_match"])
        low = self._low(b, r, g)
        if "score" in r and "score" in g:  # pairs scoring below min_score on both sides are not detections
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
            rows, ignored = _unmatched(dets, used, low, b)
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
        if self.at_cap:
            figs.update(images_at_cap=len(self.at_cap), at_cap=self.at_cap[:5])
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
            f"{name} field {label}: {len(fails)} matched detection(s) beyond {threshold_text(key, c.tol)}; "
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
    return compare_group(ref, got, kind, tolerances, name, image_hw)[0]


def compare_group(ref: Any, got: Any, kind: dict, tolerances: Any, name: str, image_hw: Any) -> tuple[dict, Any]:
    if not isinstance(ref, dict):
        ref, got, kind = {name: ref}, {name: got}, {name: kind}
    first = next(iter(kind.values()))
    tol = all_of(tolerances, name, None, first)
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
        **{k: v for k, v in tol.items() if k != "cosine"},
    }
    try:
        ref_imgs, got_imgs = read_detections(ref, kind, image_hw), read_detections(got, kind, image_hw)
    except (FormatError, KeyError, IndexError, ValueError) as exc:
        return {**row, "reason": f"cannot read detections: {exc}"}, None
    if len(ref_imgs) != len(got_imgs):
        return {**row, "reason": f"{len(got_imgs)} images != reference {len(ref_imgs)}"}, None
    c = _Collect(specs, tol, first.get("max_detections"))
    for b, (r, g) in enumerate(zip(ref_imgs, got_imgs, strict=True)):
        c.image(b, r, g)
    row.update(c.figures())
    reasons = detection_failures(name, c, ref_imgs, got_imgs)
    row["passed"] = not reasons
    if reasons:
        row["reason"] = "; ".join(reasons)
    return row, {"pairs": c.pairs, "ref": ref_imgs, "got": got_imgs}


def count(arrays: dict[str, Any], kinds: dict[str, dict[str, Any]], threshold: float, image_hw: Any = None) -> int:
    """Detections of one group scoring >= threshold over every image."""
    return sum(int((img["score"] >= threshold).sum()) for img in read_detections(arrays, kinds, image_hw))


def shape_problem(kind: dict[str, Any], dims: list[Any]) -> str | None:
    """Rows (B, N, C) / (N, C) wide enough for every column, or a whole-output field of its rank."""
    batched = kind.get("batch_axis", 0) is not None
    if "columns" in kind:
        rank, what = 2 + int(batched), "rows (batch, detections, columns)" if batched else "rows (detections, columns)"
    else:
        per = _FIELD_RANK[kind["field"]["role"]]
        if per is None:
            return None
        rank, what = per + 1 + int(batched), f"a {kind['field']['role']} field"
    if len(dims) != rank:
        return f"{what} has rank {rank}, but the output has rank {len(dims)}"
    if "columns" in kind:
        need = max(c["stop"] for c in kind["columns"])
        if isinstance(dims[-1], int) and 0 < dims[-1] < need:
            return f"its rows have {dims[-1]} columns, the declared columns need {need}"
    return None
