"""The short detections form of recipekit <= 0.3, read as columns/field."""

from __future__ import annotations

from typing import Any

_LEGACY = {"box", "score", "class", "keypoints", "extras", "extra", "box_format", "batched", "layout", "score_thr"}


def legacy_detections(data: dict[str, Any]) -> dict[str, Any]:
    if not _LEGACY & set(data) and not isinstance(data.get("field"), str):
        return data
    d = dict(data)
    fmt = d.pop("box_format", None) or d.pop("layout", None) or "xyxy"
    if "score_thr" in d:
        d["score_threshold"] = d.pop("score_thr")
    batched = d.pop("batched", None)
    if batched is not None:
        d["batch_axis"] = 0 if batched else None
    if isinstance(d.get("field"), str):
        role = {"extras": "mask_coefficients", "extra": "mask_coefficients"}.get(d["field"], d["field"])
        extra = {"box": {"format": fmt}, "keypoints": {"dims": 3}}.get(role, {})
        d["field"] = {"role": role, **extra}
        return d
    d["columns"] = _legacy_columns(d, fmt)
    return d


def _legacy_columns(d: dict[str, Any], fmt: str) -> list[dict[str, Any]]:
    cols: list[dict[str, Any]] = []
    if "box" in d:
        b = d.pop("box")
        start = b if isinstance(b, int) else int(b[0])
        cols.append({"role": "box", "start": start, "stop": start + 4, "format": fmt})
    for key, role in (("score", "score"), ("class", "class")):
        if key in d:
            cols.append({"role": role, "start": int(d[key]), "stop": int(d.pop(key)) + 1})
    if "keypoints" in d:
        start, k, dims = (int(v) for v in d.pop("keypoints"))
        cols.append({"role": "keypoints", "start": start, "stop": start + k * dims, "dims": dims})
    if "extras" in d:  # [start, stop]
        a, b = (int(v) for v in d.pop("extras"))
        cols.append({"role": "mask_coefficients", "start": a, "stop": b})
    if "extra" in d:  # [start, count]
        a, n = (int(v) for v in d.pop("extra"))
        cols.append({"role": "mask_coefficients", "start": a, "stop": a + n})
    return cols
