"""What the comparing gates (parity, batch-consistency, shape-sweep) share: tolerances and verdicts.

Tolerances are validated when the recipe is loaded (form and range); whether a per-output key names
a real output can only be known once the artifact's outputs are, so that check runs in the gate and
fails it with the unknown key named (a typo must not silently fall back to the default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from recipekit.gates.base import GateConfig, GateResult

Tol = float | dict[str, float]
TOLERANCE_KEYS = (
    "atol",
    "rtol",
    "box_px",
    "keypoints_px",
    "score_abs",
    "angle_rad",
    "mask_iou",
    "cosine",
    "iou_match",
    "min_score",
)
FP16_MARGIN = {"box_px": 1.0, "keypoints_px": 1.0, "score_abs": 0.02, "angle_rad": 0.01, "atol": 0.01, "rtol": 0.01}
"""Added to every resolved tolerance when the artifact computes in float16 (webgpu fp16: true): fp16 keeps
11 significant bits, so one ulp of a 512..1024 px coordinate is 0.5 px and of a probability near 1 is 0.0005;
the margin allows two ulps of coordinates and a few accumulated rounding steps of scores and tensors."""


class ToleranceConfig(GateConfig):
    """Each tolerance: a scalar, or a map whose keys are tried in order "<output>/<field>", "<output>" (a
    detection group by its group name) and "". Unset: the recipe's other layers, the gate's defaults, then
    the per-kind default of recipekit.onnx.compare (DEFAULTS)."""

    atol: Tol | None = Field(
        None,
        description="tensors, mask coefficients, logits: absolute tolerance (fails beyond atol AND rtol; NaN fails); "
        "default 1e-3",
    )
    rtol: Tol | None = Field(None, description="relative tolerance, of |reference|; default 1e-3")
    box_px: Tol | None = Field(
        None, description="box coordinates (raw heads and matched detections), in input pixels; default 1"
    )
    keypoints_px: Tol | None = Field(None, description="keypoint distance, in input pixels; default 1")
    score_abs: Tol | None = Field(
        None, description="probabilities (scores, class scores, keypoint visibility): absolute; default 0.01"
    )
    angle_rad: Tol | None = Field(None, description="box angles, radians modulo pi; default 0.01")
    mask_iou: Tol | None = Field(
        None, description="decoded masks: smallest IoU of a result's mask with the reference's; default 0.9"
    )
    cosine: Tol | None = Field(
        None,
        description="embeddings: smallest cosine similarity of a vector with the reference's; default 0.999",
    )
    iou_match: Tol | None = Field(
        None, description="detections: IoU (same class) at which two detections match; default 0.5"
    )
    min_score: Tol | None = Field(
        None,
        description="detections: unmatched ones scoring below this are ignored; raw heads: coordinates of "
        "candidates below it in both results are not compared (default: the NMS score threshold + score_abs, "
        "else 0.001)",
    )

    @field_validator(*TOLERANCE_KEYS)
    @classmethod
    def _non_negative(cls, v: Tol | None) -> Tol | None:
        values = [] if v is None else v.values() if isinstance(v, dict) else [v]
        if any(not x >= 0 for x in values):
            raise ValueError(f"tolerances must be >= 0 (NaN is not allowed), got {v}")
        return v

    @field_validator("iou_match", "mask_iou", "cosine")
    @classmethod
    def _unit_range(cls, v: Tol | None, info: ValidationInfo) -> Tol | None:
        values = [] if v is None else v.values() if isinstance(v, dict) else [v]
        if any(not 0 < x <= 1 for x in values):
            raise ValueError(f"{info.field_name} must be in (0, 1], got {v}")
        return v

    def tolerances(self) -> dict[str, Tol]:
        """What the recipe set (unset keys are left to the next layer)."""
        return {k: getattr(self, k) for k in TOLERANCE_KEYS if getattr(self, k) is not None}


def int8_deferred(recipe: Any, target: str, gate: str) -> str | None:
    """An element-wise gate on an INT8 artifact does not apply (the accuracy gate judges it in task terms),
    unless the target's own gates section configures the gate."""
    if recipe.export.precision != "int8" or gate in recipe.targets[target].gates:
        return None
    return "int8: element-wise agreement with the fp32 reference does not apply; the accuracy gate judges it"


def recipe_tolerances(recipe: Any, target: str, gate: str) -> dict[str, Tol]:
    """A gate's tolerance options as the recipe sets them for `target` (the target's own settings first)."""
    entry = recipe.targets.get(target)
    cfg = (entry.gates.get(gate) if entry else None) or recipe.gates.get(gate)
    return cfg.tolerances() if isinstance(cfg, ToleranceConfig) else {}


def layers(
    config: Any, defaults: dict[str, Any], *inherited: dict[str, Any], fp16: bool = False
) -> list[dict[str, Any]]:
    """The resolution order recipekit.onnx.compare reads: recipe option -> inherited -> gate default."""
    out = [config.tolerances() if isinstance(config, ToleranceConfig) else {}, *inherited, dict(defaults)]
    if fp16:
        out.append({"margin": dict(FP16_MARGIN)})
    return [x for x in out if x]


def known_names(names: list[str], kinds: dict[str, Any]) -> set[str]:
    """Names a per-output tolerance key may use: outputs, detection groups and '<output>/<field>'."""
    known = set(names) | {""}
    for name, kind in (kinds or {}).items():
        owner = str(kind.get("group") or name) if kind.get("kind") == "detections" else name
        known.add(owner)
        fields = kind.get("groups") or kind.get("columns") or ([kind["field"]] if kind.get("field") else [])
        for f in fields:
            known |= {f"{owner}/{f['name']}", f"{name}/{f['name']}"}
            if f["role"] == "keypoints":
                known |= {f"{owner}/{f['name']}"}
    return known


def unknown_keys(config: ToleranceConfig, names: list[str], kinds: dict[str, Any]) -> list[str]:
    """Per-output tolerance keys that name no output, detection group or field."""
    known = known_names(names, kinds)
    out = []
    for key in TOLERANCE_KEYS:
        value = getattr(config, key)
        for name in value if isinstance(value, dict) else ():
            if name not in known:
                names_list = ", ".join(sorted(known - {""}))
                out.append(f"{key}: tolerance key {name!r} names no output or field (known: {names_list})")
    return out


def exercised(rows: list[dict[str, Any]]) -> list[str]:
    """Raw heads whose coordinates no case compared (every candidate below min_score): not a pass."""
    heads: dict[str, int] = {}
    for r in rows:
        if r.get("kind") == "raw_head" and "compared_candidates" in r:
            heads[r["output"]] = heads.get(r["output"], 0) + int(r["compared_candidates"])
    return [
        f"{name}: no candidate scored >= min_score in any case, so no box coordinate was compared (lower min_score)"
        for name, n in heads.items()
        if n == 0
    ]


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Worst figures per output over all rows (tensor: abs/rel errors; detections: pixels, counts)."""
    worst: dict[str, dict[str, Any]] = {}
    maxima = (
        "max_abs",
        "max_rel",
        "p99_abs",
        "box_px_max",
        "keypoints_px_max",
        "score_abs_max",
        "kpt_conf_abs_max",
        "angle_rad_max",
        "mask_coefficients_abs_max",
    )
    sums = (
        "matched",
        "unmatched_ref",
        "unmatched_got",
        "failed_elements",
        "compared_candidates",
        "not_compared_below_min_score",
        "decoded_masks",
    )
    for r in rows:
        w = worst.setdefault(r["output"], {"kind": r.get("kind", "tensor"), "failed_rows": 0})
        w["failed_rows"] += int(not r["passed"])
        for key in maxima:
            if key in r:
                w[key] = max(w.get(key, 0.0), r[key]) if r[key] == r[key] else float("nan")
        for key in sums:
            if key in r:
                w[key] = w.get(key, 0) + r[key]
        if "mask_iou_min" in r:
            w["mask_iou_min"] = min(w.get("mask_iou_min", 1.0), r["mask_iou_min"])
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
