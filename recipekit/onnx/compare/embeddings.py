"""Embeddings: one vector per image, (B, D) or (D,), compared by direction.

Element-wise gates judge each image's cosine similarity against `cosine` (a minimum, default 0.999);
a failure names the image, its similarity and the element that moved most (index, both values).
Task metric (`metric`): the mean and smallest cosine similarity over the images; its items are the
vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .tensors import fmt
from .tolerances import FormatError, resolve


def vectors(arr: Any, kind: dict[str, Any]) -> np.ndarray:
    """The output as (batch, D)."""
    a = np.asarray(arr, dtype=np.float64)
    a = a[None] if kind.get("batch_axis", 0) is None else a
    if a.ndim != 2:
        raise FormatError(f"an embedding is (batch, dims), got shape {list(np.shape(arr))}")
    return a


def cosine(r: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Cosine similarity per row (1 where both rows are zero; NaN where either is not finite)."""
    num = np.sum(r * g, axis=1)
    den = np.linalg.norm(r, axis=1) * np.linalg.norm(g, axis=1)
    both_zero = (np.abs(r).sum(axis=1) == 0) & (np.abs(g).sum(axis=1) == 0)
    return np.where(both_zero, 1.0, num / np.maximum(den, 1e-30))


def compare(name: str, ref: Any, got: Any, kind: dict[str, Any], tolerances: Any, image_hw: Any = None) -> dict:
    tol = resolve(tolerances, "cosine", name, None, kind)
    row: dict[str, Any] = {"output": name, "kind": "embedding", "passed": False, "cosine": tol}
    if np.shape(ref) != np.shape(got):
        return {**row, "reason": f"shape {list(np.shape(got))} != reference {list(np.shape(ref))}"}
    try:
        r, g = vectors(ref, kind), vectors(got, kind)
    except FormatError as exc:
        return {**row, "reason": str(exc)}
    cos = cosine(r, g)
    bad = ~(cos >= tol)
    low, mean = (float(np.min(cos)), float(np.mean(cos))) if len(cos) else (1.0, 1.0)  # NaN propagates
    row.update(cosine_min=low, cosine_mean=mean, vectors=len(cos), passed=not bad.any())
    if bad.any():
        b = int(np.argmax(np.where(bad, np.nan_to_num(1 - cos, nan=np.inf), -1)))
        e = int(np.argmax(np.nan_to_num(np.abs(r[b] - g[b]), nan=np.inf)))
        row["reason"] = (
            f"{int(bad.sum())} of {len(cos)} vectors below cosine {tol:g} cosine similarity; worst: image {b}: "
            f"cosine {cos[b]:.6g}, largest change at element {e}: got {fmt(g[b, e])} vs reference {fmt(r[b, e])}"
        )
    return row


def similarity(refs: list[np.ndarray], gots: list[np.ndarray]) -> dict[str, Any]:
    """Over (batch, D) outputs, one list entry per image: cosine similarity per vector, mean and min."""
    per = []
    for k, (r, g) in enumerate(zip(refs, gots, strict=True)):
        if r.shape != g.shape:
            raise FormatError(f"image {k}: shape {list(g.shape)} != reference {list(r.shape)}")
        per += [{"image": k, "reference_items": 1, "artifact_items": 1, "cosine": float(c)} for c in cosine(r, g)]
    values = [p["cosine"] for p in per]
    return {
        "cosine_mean": float(np.mean(values)) if values else None,
        "cosine_min": float(np.min(values)) if values else None,
        "items": len(per),
        "per_image": per,
    }


def shape_problem(kind: dict[str, Any], dims: list[Any]) -> str | None:
    rank = 2 if kind.get("batch_axis", 0) is not None else 1
    if len(dims) != rank:
        want = "(batch, dims)" if rank == 2 else "(dims,)"
        return f"an embedding is {want}, but the output has rank {len(dims)}"
    return None
