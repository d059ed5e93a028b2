"""Template matchers: the closed-form class scores every family's synthetic weights use (no training).

A layer producing class logits from features f (a conv at each position, a linear layer per query
or per image) is set so that class k scores `peak` on template feature t_k, taken from a sample
photo, and at most `blank` on every feature of blank (uniform) images: logit = s * d . (f - t) + peak
along a unit direction d that separates t from the blank features by a margin m, with s = (peak -
blank) / m. Photos then give a few content-dependent detections (or one confident class), blank
images none, deterministically. Features are columns: (C, N).
"""

from __future__ import annotations

from typing import Any

Template = tuple[Any, Any, float]
"""(template feature t, unit direction d, margin m = d.t - max d.blank)."""


def direction(t: Any, blank: Any) -> tuple[Any, float] | None:
    """A unit direction scoring template `t` above every blank feature, and that margin: the mean
    difference when it separates, else the direction to the nearest point of the blank features'
    convex hull (`_nearest_in_hull`), which separates whenever anything linear does."""
    floor = 0.05 * float((t - blank.mean(dim=1)).norm())
    for p in (blank.mean(dim=1), None):
        d = t - (p if p is not None else _nearest_in_hull(t, blank))
        if float(d.norm()) == 0.0:
            return None
        d = d / d.norm()
        gap = float(d @ t - (d @ blank).max())
        if gap > floor:
            return d, gap
    return None


def _nearest_in_hull(t: Any, points: Any, steps: int = 200) -> Any:
    """Frank-Wolfe on min |t - p|^2 over p in the convex hull of the columns of `points`."""
    p = points[:, int(((points - t[:, None]) ** 2).sum(0).argmin())].clone()
    for _ in range(steps):
        s = points[:, int(((t - p) @ points).argmax())]
        step = s - p
        denom = float(step @ step)
        if denom == 0.0:
            break
        gamma = min(max(float((t - p) @ step) / denom, 0.0), 1.0)
        if gamma == 0.0:
            break
        p = p + gamma * step
    return p


def templates(real: list[Any], blank: Any, per_image: int) -> list[Template]:
    """Per photo, up to `per_image` of its features furthest from every blank feature that a linear
    score separates from all blank features."""
    import torch

    out = []
    for feats in real:
        dist = torch.cdist(feats.T, blank.T).min(dim=1).values
        found = 0
        for i in dist.argsort(descending=True).tolist()[:200]:
            sep = direction(feats[:, i], blank)
            if sep is not None:
                out.append((feats[:, i], *sep))
                found += 1
            if found == per_image:
                break
    return out


def off_hull(real: list[Any], blank: Any) -> list[Template]:
    """Few features (a classifier's, one per image): image k's feature minus its projection on the
    affine hull of the blank features and the other images' is a direction on which all of those
    score alike, |d| below image k. So class k fires on image k only."""
    import torch

    out = []
    for k, feats in enumerate(real):
        t = feats[:, 0]
        others = torch.cat([blank, *(r for j, r in enumerate(real) if j != k)], dim=1)
        base, span = others[:, 0], others[:, 1:] - others[:, :1]
        d = t - base
        if span.shape[1]:
            d = d - (span @ torch.linalg.lstsq(span, d[:, None]).solution)[:, 0]
        if float(d.norm()) > 1e-3 * float((t - base).norm()):
            out.append((t, d / d.norm(), float(d.norm())))
    return out


def narrow(found: list[Template], real: Any, keep: int) -> list[Template]:
    """Narrow each template so at most `keep` photo features score above the blank level: where
    neighbouring features are near-identical (RT-DETR queries, dense one-stage heads) they would
    otherwise all fire."""
    out = []
    for t, d, gap in found:
        scores = (d @ real).sort(descending=True).values
        edge = float(d @ t) - gap  # the highest blank score
        narrowed = float(d @ t) - max(edge, float(scores[min(keep, len(scores) - 1)]))
        if narrowed > 0.05 * gap:
            out.append((t, d, narrowed))
    return out


def fit(weight: Any, bias: Any, rows: list[int], found: list[Template], peak: float, blank: float) -> int:
    """Rows `rows[k]` of (weight (R, C), bias (R,)) become template k's matcher; returns how many were set.
    Other rows are left as the caller set them."""
    import torch

    n = min(len(rows), len(found))
    with torch.no_grad():
        for row, (t, d, gap) in zip(rows[:n], found[:n], strict=True):
            scale = (peak - blank) / gap
            weight[row] = scale * d
            bias[row] = peak - scale * float(d @ t)
    return n
