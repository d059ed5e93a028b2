"""Synthetic Ultralytics weights that detect something, deterministically.

Seeded weights with recalibrated BatchNorm statistics still score every class near the head's
prior, and their strongest responses sit on content-independent anchors (image borders, uniform
padding) that a blank image triggers as strongly as a photo. So the class convolutions are turned
into template matchers: at one level, a few anchors of each sample image whose features are
furthest from any blank image's become templates, one class each; a class fires where the
features resemble its template. Photos then give a handful of content-dependent detections and a
blank image none, which the gates need to be meaningful (field notes cases 1, 2 and 5). Each class
branch (one-to-many and, on YOLOv10 / YOLO26, one-to-one) is set up alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recipekit.recipe.schema import Recipe

TEMPLATES_PER_IMAGE = 3
LEVEL = 1  # stride-16 level of a three-level head
PEAK_LOGIT = 3.0  # logit at a template anchor
BLANK_LOGIT = -4.0  # highest logit allowed on a blank image (score 0.018)
BLANKS = (0, 255)  # uniform images (and the letterbox pad value) that must detect nothing


def _last_convs(model: Any) -> dict[str, list[Any]]:
    head = model.model[-1]
    return {
        n: [seq[-1] for seq in getattr(head, n)] for n in ("cv3", "one2one_cv3") if getattr(head, n, None) is not None
    }


def _features(model: Any, x: Any) -> dict[str, Any]:
    """Per branch: the input features (C, anchors) of the class conv at LEVEL, batch-1 input."""
    import torch

    seen: dict[str, Any] = {}
    hooks = [
        convs[LEVEL].register_forward_hook(lambda m, i, o, n=name: seen.setdefault(n, i[0][0].flatten(1)))
        for name, convs in _last_convs(model).items()
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def _direction(t: Any, blank: Any) -> tuple[Any, float] | None:
    """A unit direction scoring template `t` above every blank feature, and that margin."""
    d = t - blank.mean(dim=1)
    d = d / d.norm()
    gap = float(d @ t - (d @ blank).max())
    return (d, gap) if gap > 0.05 * float((t - blank.mean(dim=1)).norm()) else None


def _templates(real: list[Any], blank: Any) -> list[tuple[Any, Any, float]]:
    """(template, direction, margin) for the anchors furthest from every blank feature that a
    linear score separates from all blank features, a few per image."""
    import torch

    out = []
    for feats in real:
        dist = torch.cdist(feats.T, blank.T).min(dim=1).values
        found = 0
        for i in dist.argsort(descending=True).tolist()[:200]:
            sep = _direction(feats[:, i], blank)
            if sep is not None:
                out.append((feats[:, i], *sep))
                found += 1
            if found == TEMPLATES_PER_IMAGE:
                break
    return out


def _matcher(conv: Any, templates: list[tuple[Any, Any, float]]) -> None:
    """Class k scores PEAK_LOGIT at template k and at most BLANK_LOGIT on any blank feature."""
    import torch

    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(-30.0)
        for k, (t, d, gap) in enumerate(templates[: conv.out_channels]):
            scale = (PEAK_LOGIT - BLANK_LOGIT) / gap
            conv.weight[k, :, 0, 0] = scale * d
            conv.bias[k] = PEAK_LOGIT - scale * float(d @ t)


def synthesize(model: Any, recipe: Recipe) -> dict[str, Any]:
    """Recalibrate BatchNorm on the sample images, then make the class convs template matchers."""
    import torch

    from recipekit.onnx import preprocess
    from recipekit.sources.synthetic import recalibrate_bn, sample_images

    pre, hw = recipe.input.preprocess, tuple(recipe.export.imgsz)
    images = sample_images(recipe.input.samples, Path(recipe.base_dir))
    batches = [torch.from_numpy(preprocess.to_tensor(preprocess.resize(im, hw, pre)[0], pre)) for im in images]
    model.eval()
    recalibrate_bn(model, batches)
    real = [_features(model, b) for b in batches]
    blank_feats = [
        _features(model, torch.from_numpy(preprocess.blank_tensor(hw, pre, value=v))) for v in (*BLANKS, pre.pad_value)
    ]
    figures = {}
    for name, convs in _last_convs(model).items():
        blank = torch.cat([b[name] for b in blank_feats], dim=1)
        templates = _templates([r[name] for r in real], blank)
        for i, conv in enumerate(convs):
            _matcher(conv, templates if i == LEVEL else [])
        figures[name] = {"templates": len(templates), "level": LEVEL}
    return figures
