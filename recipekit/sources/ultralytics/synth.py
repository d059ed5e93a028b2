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

from recipekit.sources.ultralytics import synth_heads
from recipekit.sources.ultralytics.synth_heads import BLANK_LOGIT, PEAK_LOGIT, pick_templates

if TYPE_CHECKING:
    from recipekit.recipe.schema import Recipe

LEVEL = 1  # stride-16 level of a three-level head
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

    def keep(name: str, inputs: tuple[Any, ...]) -> None:  # returns None: a hook's return value replaces the output
        seen.setdefault(name, inputs[0][0].flatten(1))

    hooks = [
        convs[LEVEL].register_forward_hook(lambda m, i, o, n=name: keep(n, i))
        for name, convs in _last_convs(model).items()
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


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


def calibration_inputs(recipe: Recipe) -> tuple[list[Any], list[Any]]:
    """The sample images and the blank images (0, 255, pad value), preprocessed as the recipe declares."""
    import torch

    from recipekit.onnx import preprocess
    from recipekit.sources.synthetic import sample_images

    pre, hw = recipe.input.preprocess, tuple(recipe.export.imgsz)
    images = sample_images(recipe.input.samples, Path(recipe.base_dir))
    real = [torch.from_numpy(preprocess.to_tensor(preprocess.resize(im, hw, pre)[0], pre)) for im in images]
    blank = [torch.from_numpy(preprocess.blank_tensor(hw, pre, value=v)) for v in sorted({*BLANKS, pre.pad_value})]
    return real, blank


def synthesize(model: Any, recipe: Recipe) -> dict[str, Any]:
    """Recalibrate BatchNorm on the sample images, then make the class scores template matchers:
    the class convs of a YOLO head; a classifier's linear layer or RT-DETR's decoder score head
    (`synth_heads`)."""
    from recipekit.sources.synthetic import recalibrate_bn

    batches, blanks = calibration_inputs(recipe)
    model.eval()
    recalibrate_bn(model, batches)
    head = type(model.model[-1]).__name__
    if head in synth_heads.SYNTHESIZERS:
        return synth_heads.SYNTHESIZERS[head](model, batches, blanks)
    return _yolo_head(model, batches, blanks)


def _yolo_head(model: Any, batches: list[Any], blanks: list[Any]) -> dict[str, Any]:
    import torch

    real = [_features(model, b) for b in batches]
    blank_feats = [_features(model, b) for b in blanks]
    figures = {}
    for name, convs in _last_convs(model).items():
        blank = torch.cat([b[name] for b in blank_feats], dim=1)
        templates = pick_templates([r[name] for r in real], blank)
        for i, conv in enumerate(convs):
            _matcher(conv, templates if i == LEVEL else [])
        figures[name] = {"templates": len(templates), "level": LEVEL}
    return figures
