"""What the comparing gates (parity, batch-consistency, shape-sweep) share: tolerances and verdicts.

Tolerances are validated when the recipe is loaded (form and range); whether a per-output key names
a real output can only be known once the artifact's outputs are, so that check runs in the gate and
fails it with the unknown key named (a typo must not silently fall back to the default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field, field_validator

from recipekit.gates.base import GateConfig, GateResult

Tol = float | dict[str, float]
TOLERANCE_KEYS = ("atol", "rtol", "box_px", "keypoints_px", "score_abs", "iou_match", "min_score")


class ToleranceConfig(GateConfig):
    """Each tolerance: a scalar, or a per-output map (detection groups by group name) whose "" key is the default."""

    atol: Tol = Field(1e-3, description="raw tensors: absolute tolerance (fails beyond atol AND rtol; NaN fails)")
    rtol: Tol = Field(1e-3, description="raw tensors: relative tolerance, of |reference|")
    box_px: Tol = Field(1.0, description="detections: largest box coordinate error of a matched pair, in pixels")
    keypoints_px: Tol = Field(1.0, description="detections: largest keypoint distance of a matched pair, in pixels")
    score_abs: Tol = Field(0.01, description="detections: largest score (or keypoint confidence) error of a pair")
    iou_match: Tol = Field(0.5, description="detections: IoU (same class) at which two detections match")
    min_score: Tol = Field(0.0, description="detections: unmatched ones scoring below this are ignored (NMS edge)")

    @field_validator(*TOLERANCE_KEYS)
    @classmethod
    def _non_negative(cls, v: Tol) -> Tol:
        values = v.values() if isinstance(v, dict) else [v]
        if any(not x >= 0 for x in values):
            raise ValueError(f"tolerances must be >= 0 (NaN is not allowed), got {v}")
        return v

    @field_validator("iou_match")
    @classmethod
    def _iou_range(cls, v: Tol) -> Tol:
        values = v.values() if isinstance(v, dict) else [v]
        if any(not 0 < x <= 1 for x in values):
            raise ValueError(f"iou_match must be in (0, 1], got {v}")
        return v

    def tolerances(self) -> dict[str, Tol]:
        return {k: getattr(self, k) for k in TOLERANCE_KEYS}


def unknown_keys(config: ToleranceConfig, names: list[str], kinds: dict[str, Any]) -> list[str]:
    """Per-output tolerance keys that name no output and no detection group."""
    known = set(names) | {str(k.get("group", n)) for n, k in (kinds or {}).items()} | {""}
    out = []
    for key in TOLERANCE_KEYS:
        value = getattr(config, key)
        for name in value if isinstance(value, dict) else ():
            if name not in known:
                names_list = ", ".join(sorted(known - {""}))
                out.append(f"{key}: tolerance key {name!r} names no output (outputs: {names_list})")
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Worst figures per output over all rows (tensor: abs/rel errors; detections: pixels, counts)."""
    worst: dict[str, dict[str, Any]] = {}
    maxima = ("max_abs", "max_rel", "p99_abs", "box_px_max", "keypoints_px_max", "score_abs_max", "kpt_conf_abs_max")
    sums = ("matched", "unmatched_ref", "unmatched_got", "failed_elements")
    for r in rows:
        w = worst.setdefault(r["output"], {"kind": r.get("kind", "tensor"), "failed_rows": 0})
        w["failed_rows"] += int(not r["passed"])
        for key in maxima:
            if key in r:
                w[key] = max(w.get(key, 0.0), r[key]) if r[key] == r[key] else float("nan")
        for key in sums:
            if key in r:
                w[key] = w.get(key, 0) + r[key]
    return worst


def decide(
    rows: list[dict[str, Any]],
    where: Callable[[dict[str, Any]], str],
    extra_failures: list[str] | None = None,
    figures: dict[str, Any] | None = None,
) -> GateResult:
    """The verdict from comparison rows: failures read '<output> at <where>: <figure> <value> > <threshold>'."""
    failures = list(extra_failures or [])
    failures += [f"{r['output']} at {where(r)}: {r.get('reason', 'failed')}" for r in rows if not r["passed"]]
    ok = sum(bool(r["passed"]) for r in rows)
    status = "failed" if failures or not rows else "passed"
    message = f"{ok}/{len(rows)} output comparisons within tolerance" if rows else "nothing was compared"
    return GateResult(
        status,
        figures={"outputs": summarize(rows), "rows": rows, **(figures or {})},
        failures=failures or ([] if rows else ["no comparison ran (no golden cases?)"]),
        message=message,
    )
