"""The one output comparison: every gate, the Jetson check and `device-check` judge outputs with it.

numpy only, relative imports only: the Jetson bundle copies this package whole next to its check.py
(`import compare`). It reads the plain JSON output semantics of recipekit.recipe.outputs
(`kinds[name]`; that package documents the kinds, field roles and units) and compares each output
in its own units, one module per kind:

- tensors: plain tensors and class scores, element-wise (atol AND rtol; probabilities score_abs).
- raw_heads: candidates before NMS, per channel group (box_px, keypoints_px, score_abs, angle_rad);
  only candidates scoring >= min_score on at least one side are compared outside the score groups.
- detections: after NMS, matched by class and IoU, fields compared on matched pairs; a list at its
  declared cap is compared on the detections standing clear of the cut.
- masks: instance and prototype masks as mask IoU.
- dense: dense maps (binary or per-pixel classes) element-wise, with the binarized map's IoU.
- sequences: CTC sequence scores element-wise, with the greedy-decoded sequences.
- embeddings: cosine similarity per vector.
- level_heads: per-level detector heads decoded (dfl, yolox) and compared as a raw head.
- tolerances: defaults, units, the layers a gate hands in.

Each kind module has `compare(...)` (its rows) and `shape_problem(kind, dims)` (why a declaration
does not fit an output of that rank and shape, or None); `shape_problems` checks a whole model.
A failure names the output, the part (channel group, field, class, pixel, time step, cell), the index,
both values, the tolerance and its unit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import dense, detections, embeddings, level_heads, masks, raw_heads, sequences, tensors
from .detections import compare_detections, read_detections
from .masks import compare_prototypes
from .raw_heads import compare_raw_head
from .tensors import compare_tensor
from .tolerances import DEFAULTS, TOLERANCE_KEYS, UNIT_OF, FormatError, resolve

__all__ = [
    "DEFAULTS",
    "KINDS",
    "TOLERANCE_KEYS",
    "UNIT_OF",
    "FormatError",
    "compare_detections",
    "compare_outputs",
    "compare_tensor",
    "detection_counts",
    "read_detections",
    "resolve",
    "shape_problems",
]

SINGLE = {
    "tensor": tensors,
    "class_scores": tensors,
    "dense_map": dense,
    "sequence": sequences,
    "embedding": embeddings,
}
"""Kinds compared one output at a time."""
KINDS = (*SINGLE, "raw_head", "detections", "prototype_masks", "level_head")
SHAPES = {
    **SINGLE,
    "raw_head": raw_heads,
    "detections": detections,
    "prototype_masks": masks,
    "level_head": level_heads,
}
COUNTED = ("raw_head", "detections", "level_head")
"""Kinds whose outputs carry a count of detections (that can be zero)."""


def owner(name: str, kind: dict[str, Any]) -> str:
    """The name a multi-output kind is compared under: a detection group, a level head, else the output."""
    if kind.get("kind") == "detections":
        return str(kind.get("group") or name)
    if kind.get("kind") == "level_head":
        return str(kind.get("head") or "head")
    return name


def _sets(names: list[str], kinds: dict[str, dict[str, Any]], what: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for k, name in enumerate(names):
        if (kinds.get(name) or {}).get("kind") == what:
            out.setdefault(owner(name, kinds[name]), []).append(k)
    return out


def compare_outputs(
    names: list[str],
    refs: list[Any],
    gots: list[Any],
    kinds: dict[str, dict[str, Any]] | None,
    tolerances: Any,
    image_hw: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """Every output compared by its semantics: one row per single output, raw head or prototype output,
    one per detection group and one per level head. `image_hw`: the input's (H, W), for normalized
    coordinates, mask crops and nlc level grids."""
    kinds = kinds or {}
    rows: list[dict[str, Any]] = []
    ctx: dict[str, Any] = {}
    for k, name in enumerate(names):
        kind = kinds.get(name) or {"kind": "tensor"}
        what = kind.get("kind")
        if what in SINGLE:
            rows.append(SINGLE[what].compare(name, refs[k], gots[k], kind, tolerances, image_hw))
        elif what == "raw_head":
            row, ctx[name] = compare_raw_head(name, refs[k], gots[k], kind, tolerances, image_hw)
            rows.append(row)
        elif what not in KINDS:
            why = f"unknown output kind {what!r} ({', '.join(KINDS)})"
            rows.append({"output": name, "kind": str(what), "passed": False, "reason": why})
    for group, idx in _sets(names, kinds, "detections").items():
        part = _part(names, kinds, idx)
        row, dctx = detections.compare_group(part(refs), part(gots), part(None), tolerances, group, image_hw)
        rows.append(row)
        ctx.update(dict.fromkeys((names[k] for k in idx), dctx))
    for head, idx in _sets(names, kinds, "level_head").items():
        part = _part(names, kinds, idx)
        rows.append(level_heads.compare(head, part(refs), part(gots), part(None), tolerances, image_hw))
    for k in _sets(names, kinds, "prototype_masks").values():
        name, kind = names[k[0]], kinds[names[k[0]]]
        coef = kinds.get(kind["coefficients"], {})
        rows.append(
            compare_prototypes(
                name, refs[k[0]], gots[k[0]], kind, coef, ctx.get(kind["coefficients"]), tolerances, image_hw
            )
        )
    return rows


def _part(names: list[str], kinds: dict[str, Any], idx: list[int]) -> Any:
    """values -> {output name: value} over the outputs `idx` (None: their kinds)."""
    return lambda values: {names[k]: (kinds[names[k]] if values is None else values[k]) for k in idx}


def detection_counts(
    names: list[str],
    outs: list[Any],
    kinds: dict[str, dict[str, Any]] | None,
    score_of: Any,
    image_hw: tuple[int, int] | None = None,
) -> int | None:
    """How many detections (raw-head or decoded level-head candidates) score >= score_of(name, kind) over
    all images and outputs; None when no output carries detections (nothing can be counted)."""
    kinds, total, found = kinds or {}, 0, False
    for k, name in enumerate(names):
        kind = kinds.get(name) or {}
        if kind.get("kind") == "raw_head":
            found, total = True, total + raw_heads.count(outs[k], kind, score_of(name, kind))
    for group, idx in _sets(names, kinds, "detections").items():
        part = _part(names, kinds, idx)
        found = True
        total += detections.count(part(outs), part(None), score_of(group, kinds[names[idx[0]]]), image_hw)
    for head, idx in _sets(names, kinds, "level_head").items():
        part = _part(names, kinds, idx)
        cands, _ = level_heads.decode(part(outs), part(None), image_hw)
        found = True
        total += int((np.max(cands[..., 4:], axis=-1, initial=0.0) >= score_of(head, kinds[names[idx[0]]])).sum())
    return total if found else None


def shape_problems(kinds: dict[str, dict[str, Any]], dims: dict[str, list[Any]]) -> list[tuple[str, str]]:
    """(output, why) for every declaration that does not fit its output's rank or shape (`dims`: output
    name -> its dims, ints or None/strings for dynamic ones)."""
    out = []
    for name, kind in (kinds or {}).items():
        module = SHAPES.get(str(kind.get("kind")))
        why = module.shape_problem(kind, list(dims[name])) if module is not None and name in dims else None
        if why:
            out.append((name, f"declared {kind.get('kind')}: {why}"))
    return out
