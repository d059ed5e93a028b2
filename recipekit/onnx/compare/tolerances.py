"""Tolerances: the per-kind defaults, their units, and how the layers a gate hands in resolve.

`tolerances` is one dict or a list of dicts (layers, first wins: the recipe's option for the gate,
then e.g. the recipe's parity option, then the gate's defaults). A value is a scalar or a map whose
keys are tried in order "<output>/<field>", "<output>" (a detection group's or head's name) and "".
What no layer sets takes the per-kind default (KIND_DEFAULTS, then DEFAULTS; detections declaring
the NMS `score_threshold` default min_score to score_threshold + score_abs). A layer may carry a
`margin` (key -> amount) added to the resolved value, e.g. the fp16 margin.
"""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, float] = {
    "atol": 1e-3,
    "rtol": 1e-3,
    "box_px": 1.0,
    "keypoints_px": 1.0,
    "score_abs": 0.01,
    "angle_rad": 0.01,
    "mask_iou": 0.9,
    "cosine": 0.999,
    "iou_match": 0.5,
    "min_score": 0.001,
}
"""Per-kind defaults of every tolerance (pixels for coordinates, absolute for probabilities, cosine
similarity for embeddings). min_score 0.001 is Ultralytics' validation threshold, the lowest any user
runs NMS at: candidates and detections under it on both sides can never become results."""
KIND_DEFAULTS: dict[str, dict[str, float]] = {}
"""Per-kind overrides of DEFAULTS (none today; a kind plugin may add its own)."""
TOLERANCE_KEYS = tuple(DEFAULTS)
MINIMA = ("mask_iou", "cosine", "iou_match", "min_score")
"""Keys that are thresholds to stay above (no margin is added to them)."""
UNIT_OF = {
    "box_px": "px",
    "keypoints_px": "px",
    "score_abs": "abs",
    "angle_rad": "rad",
    "mask_iou": "IoU",
    "cosine": "cosine similarity",
    "atol": "abs",
    "rtol": "rel",
    "min_score": "score",
    "iou_match": "IoU",
}


class FormatError(ValueError):
    """An output does not have the layout its semantics describe."""


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
    if key in MINIMA:
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


def all_of(tolerances: Any, output: str, field: str | None = None, kind: dict | None = None) -> dict[str, float]:
    """Every tolerance key resolved for one output (and field)."""
    return {k: resolve(tolerances, k, output, field, kind) for k in TOLERANCE_KEYS}


def threshold_text(key: str, tol: dict[str, float]) -> str:
    """How a failure names the rule it broke: 'box_px 1 px', 'atol=0.001 and rtol=0.001'."""
    if key == "atol":
        return f"atol={tol['atol']:g} and rtol={tol['rtol']:g}"
    return f"{key} {tol[key]:g} {UNIT_OF[key]}"
