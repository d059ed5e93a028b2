"""Sequences: per-time-step class scores of a CTC text recognizer, (B, T, C) or (T, B, C); classes last.

Element-wise (parity and the other element-wise gates), in the declared unit: probabilities by
score_abs, logits (or log-probabilities) by atol AND rtol; a failure names the image, the time step
and the class. The greedy CTC decoding (argmax per step, repeats collapsed, the `blank` class
dropped) of both sides is a figure (`decoded_equal`).
Task metric (`metric`): the exact-match rate of the decoded sequences and the character error
rate (edit distance / reference length, over every image). Its items are the reference's decoded
characters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .tensors import compare_in_unit
from .tolerances import FormatError


def btc(arr: Any, kind: dict[str, Any]) -> np.ndarray:
    """The output as (batch, time, classes)."""
    a = np.asarray(arr)
    if kind.get("batch_axis", 0) is None:
        a = a[None]
    elif kind.get("time_axis", 1) == 0:
        a = np.swapaxes(a, 0, 1)
    if a.ndim != 3:
        raise FormatError(f"a sequence is (batch, time, classes), got shape {list(np.shape(arr))}")
    return a


def greedy(seq: np.ndarray, blank: int) -> list[list[int]]:
    """Greedy CTC decoding of (batch, time, classes): argmax per step, repeats collapsed, blanks dropped."""
    out = []
    for best in np.argmax(seq, axis=-1):
        keep = np.ones(len(best), bool)
        keep[1:] = best[1:] != best[:-1]
        out.append([int(c) for c in best[keep] if c != blank])
    return out


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def _label(kind: dict[str, Any]) -> Any:
    batched, tbc = kind.get("batch_axis", 0) is not None, kind.get("time_axis", 1) == 0

    def where(idx: tuple[int, ...]) -> str:
        b, t = ((idx[1], idx[0]) if tbc else (idx[0], idx[1])) if batched else (0, idx[0])
        return f"image {b} time step {t} class {idx[-1]}"

    return where


def compare(name: str, ref: Any, got: Any, kind: dict[str, Any], tolerances: Any, image_hw: Any = None) -> dict:
    """Element-wise in the declared unit; the decoded sequences as figures."""

    def figures(r: Any, g: Any) -> dict[str, Any]:
        figs = decoded([btc(r, kind)], [btc(g, kind)], kind)
        return {"decoded_equal": figs["exact"], "sequences": figs["sequences"], "characters_ref": figs["items"]}

    return compare_in_unit(name, ref, got, kind, tolerances, _label(kind), figures)


def decoded(refs: list[np.ndarray], gots: list[np.ndarray], kind: dict[str, Any]) -> dict[str, Any]:
    """Over (batch, time, classes) outputs, one list entry per image: exact matches, character error
    rate, per image with the reference's and the artifact's decoded lengths."""
    blank, per = int(kind.get("blank", 0)), []
    for k, (r, g) in enumerate(zip(refs, gots, strict=True)):
        if r.shape != g.shape:
            raise FormatError(f"image {k}: shape {list(g.shape)} != reference {list(r.shape)}")
        for rs, gs in zip(greedy(r, blank), greedy(g, blank), strict=True):
            per.append(
                {
                    "image": k,
                    "reference_items": len(rs),
                    "artifact_items": len(gs),
                    "exact": rs == gs,
                    "edits": edit_distance(rs, gs),
                }
            )
    chars = sum(p["reference_items"] for p in per)
    return {
        "sequences": len(per),
        "exact": sum(p["exact"] for p in per),
        "exact_match": sum(p["exact"] for p in per) / len(per) if per else None,
        "cer": sum(p["edits"] for p in per) / chars if chars else None,
        "items": chars,
        "per_image": per,
    }


def count(arr: Any, kind: dict[str, Any]) -> int:
    """Decoded characters over every image."""
    return sum(len(s) for s in greedy(btc(arr, kind), int(kind.get("blank", 0))))


def shape_problem(kind: dict[str, Any], dims: list[Any]) -> str | None:
    """(batch, time, classes) or (time, batch, classes), classes last and more than the blank."""
    rank = 3 if kind.get("batch_axis", 0) is not None else 2
    if len(dims) != rank:
        axes = "(batch, time, classes)" if rank == 3 else "(time, classes)"
        return f"a sequence is {axes}, but the output has rank {len(dims)}"
    c = dims[-1]
    if isinstance(c, int) and c > 0 and (c < 2 or int(kind.get("blank", 0)) >= c):
        return f"its last axis has {c} classes: too few for blank index {kind.get('blank', 0)}"
    return None
