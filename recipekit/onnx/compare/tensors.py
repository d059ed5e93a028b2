"""Tensors element-wise, and the kinds compared that way: plain tensors and class scores.

The failure rule: an element fails where |a-b| > atol AND |a-b| > rtol*|ref|; NaN or Inf where the
reference is finite fails. Probabilities (class scores, score maps) use score_abs alone. A failure
names the worst element's index (in the kind's own terms when the kind gives a `label`), both values
and the tolerance with its unit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .tolerances import FormatError, resolve, threshold_text


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
    names = ("max", "mean", "median", "p99")
    if diff.size == 0 or np.all(np.isnan(diff)):
        nan = float("nan") if diff.size else 0.0
        stats = {f"{n}_{k}": nan for k in ("abs", "rel") for n in names}
        return {**stats, "nonfinite": int((~finite).sum()), "size": int(diff.size)}
    out: dict[str, Any] = {}
    for k, v in (("abs", diff), ("rel", rel)):
        out.update(
            {
                f"max_{k}": float(np.nanmax(v)),
                f"mean_{k}": float(np.nanmean(v)),
                f"median_{k}": float(np.nanmedian(v)),
                f"p99_{k}": float(np.nanpercentile(v, 99)),
            }
        )
    return {**out, "nonfinite": int((~finite).sum()), "size": int(diff.size)}


def failing_elements(ref: np.ndarray, got: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """The failure rule as a mask: beyond atol AND rtol*|ref|, or non-finite where ref is finite."""
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    diff = np.abs(ref64 - got64)
    bad = (diff > atol) & (diff > rtol * np.abs(ref64))
    return bad | (np.isnan(diff) & ~np.isnan(ref64)) | (~np.isfinite(got64) & np.isfinite(ref64))


def fmt(v: Any) -> str:
    a = np.asarray(v, dtype=np.float64)
    return f"{float(a):.6g}" if a.ndim == 0 else "[" + ", ".join(f"{x:.6g}" for x in a.ravel()) + "]"


def worst_element(ref: np.ndarray, got: np.ndarray, bad: np.ndarray, err: np.ndarray) -> tuple[tuple[int, ...], float]:
    """The index of the worst failing element (NaN first), and its error."""
    score = np.where(bad, np.nan_to_num(err, nan=np.inf), -1.0)
    idx = np.unravel_index(int(np.argmax(score)), bad.shape)
    return tuple(int(i) for i in idx), float(err[idx])


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


Label = Callable[[tuple[int, ...]], str]


def compare_values(
    name: str, ref: Any, got: Any, key: str, tol: dict[str, float], kind: str, label: Label | None = None
) -> dict[str, Any]:
    """One output element-wise under one rule (atol: atol AND rtol; else that key): stats, the count of
    failing elements, the worst one named by `label` (default: its index), the verdict."""
    ref, got = np.asarray(ref), np.asarray(got)
    rule = {"atol": tol["atol"], "rtol": tol["rtol"]} if key == "atol" else {key: tol[key]}
    row: dict[str, Any] = {"output": name, "kind": kind, "passed": False, **rule}
    if tuple(ref.shape) != tuple(got.shape):
        return {**row, "reason": f"shape {list(got.shape)} != reference {list(ref.shape)}"}
    stats = tensor_stats(ref, got)
    err, bad = value_errors(ref, got, key, tol)
    failed = int(bad.sum())
    row.update(passed=failed == 0, failed_elements=failed, **stats)
    if failed:
        idx, e = worst_element(ref, got, bad, err)
        where = label(idx) if label else f"index {list(idx)}"
        row["reason"] = (
            f"{failed} of {stats['size']} elements beyond {threshold_text(key, tol)}; worst at {where}: got "
            f"{fmt(got[idx])} vs reference {fmt(ref[idx])}, |diff| {e:.4g}"
        )
    return row


def compare_tensor(name: str, ref: np.ndarray, got: np.ndarray, atol: float, rtol: float) -> dict[str, Any]:
    """One output compared element-wise with atol AND rtol."""
    return compare_values(name, ref, got, "atol", {"atol": atol, "rtol": rtol}, "tensor")


def unit_rule(unit: str) -> str:
    """Probabilities are judged by score_abs, everything else by atol AND rtol."""
    return "score_abs" if unit == "probability" else "atol"


def compare_in_unit(
    name: str, ref: Any, got: Any, kind: dict[str, Any], tolerances: Any, label: Label, figures: Any = None
) -> dict:
    """Element-wise in the kind's declared unit (probabilities: score_abs; else atol AND rtol), failures
    named by `label`; `figures(ref, got)` adds the kind's own figures when both shapes agree (a
    FormatError it raises fails the row)."""
    tol = {k: resolve(tolerances, k, name, None, kind) for k in ("atol", "rtol", "score_abs")}
    row = compare_values(name, ref, got, unit_rule(str(kind.get("unit"))), tol, str(kind["kind"]), label)
    if figures is None or np.shape(ref) != np.shape(got):
        return row
    try:
        row.update(figures(ref, got))
    except FormatError as exc:
        return {**row, "passed": False, "reason": str(exc)}
    return row


def compare(name: str, ref: Any, got: Any, kind: dict[str, Any], tolerances: Any, image_hw: Any = None) -> dict:
    """A tensor (atol AND rtol) or class scores (probabilities: score_abs; logits: atol AND rtol)."""
    what = str(kind.get("kind", "tensor"))
    key = unit_rule(str(kind.get("unit"))) if what == "class_scores" else "atol"
    tol = {k: resolve(tolerances, k, name, None, kind) for k in ("atol", "rtol", "score_abs")}
    label = _class_label(kind) if what == "class_scores" else None
    row = compare_values(name, ref, got, key, tol, what, label)
    if what == "class_scores":
        row["unit"] = kind.get("unit")
    return row


def _class_label(kind: dict[str, Any]) -> Label:
    batched = kind.get("batch_axis", 0) is not None
    return lambda idx: f"image {idx[0]} class {idx[1]}" if batched and len(idx) == 2 else f"class {idx[-1]}"


def shape_problem(kind: dict[str, Any], dims: list[Any]) -> str | None:
    """Class scores are (batch, classes) or (classes,); a tensor can be anything."""
    if kind.get("kind") != "class_scores":
        return None
    rank = 1 + int(kind.get("batch_axis", 0) is not None)
    if len(dims) != rank:
        want = "(batch, classes)" if rank == 2 else "(classes,)"
        hint = "; a (batch, time, classes) output is a `sequence`, a (batch, classes, H, W) one a `dense_map`"
        return f"class_scores are {want}, but the output has rank {len(dims)}" + (hint if len(dims) > rank else "")
    return None
