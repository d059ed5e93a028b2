"""Synthetic weights for torchvision two-stage detectors that find objects, and nothing in a blank image.

Seeded random weights with recalibrated BatchNorm still detect nothing: the RPN's objectness sits
near 0.5 everywhere (blank images included) and the box classifier's softmax over 91 classes stays
near 1/91, below any score threshold. Two closed-form settings fix that, with no training:
- objectness = a * (f . w) + b, where f is the RPN head's feature, w the Fisher direction that
  separates real images' features from uniform images' (at every declared shape), and (a, b) map the
  highest uniform-image value to a quarter of `rpn_score_thresh` and the weakest real image's best
  value to 0.5. Uniform (blank) images then give zero proposals: the input that exercises the
  zero-proposal path of the graph. Anchor k of a position scores ANCHOR_STEP * k lower than anchor 0:
  with one shared direction the anchors of a position would tie exactly, and which of a tie survives
  the RPN's top-n cuts is up to the sort (PyTorch and ONNX Runtime keep different ones, so one
  proposal, and its detection, would differ for no fault of the export).
- class logits = s * W (x - mean x): centred on the real proposals' mean box feature and scaled
  to a spread of CLASS_SPREAD, so each proposal favours some class with a confident score.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from recipekit.core.errors import RecipeKitError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from recipekit.recipe.schema import Recipe

UNIFORM_VALUES = (0, 64, 114, 128, 192, 255)
CLASS_SPREAD = 2.0
RPN_SCORE_THRESH = 0.05
RIDGE = 0.1
ANCHOR_STEP = 0.1


def calibrate(model: nn.Module, recipe: Recipe, seed: int, family: str) -> dict[str, Any]:
    """Recalibrate BatchNorm on the shipped sample images, then the heads. One-stage detectors see all
    images in one batch (BatchNorm needs at least 2 values per channel: SSDlite's last level is 1x1);
    R-CNNs one image per batch (their BatchNorms see every position; this keeps their statistics,
    and the exports recipes pin, as they were)."""
    from recipekit.sources.synthetic import SAMPLE_IMAGES, recalibrate_bn

    real = _images(recipe)
    if family in ("rcnn", "mask_rcnn", "keypoint_rcnn"):
        batches = [[x] for x in real]
    else:
        batches = [real if len(real) > 1 else [*real, real[0].flip(-1)]]
    layers = recalibrate_bn(model, batches)
    notes: dict[str, Any] = {"seed": seed, "calibration_images": list(SAMPLE_IMAGES), "bn_layers": layers}
    uniform = [_uniform(v, hw) for hw in recipe.shapes() for v in UNIFORM_VALUES]
    if family in ("rcnn", "mask_rcnn", "keypoint_rcnn"):
        if family != "rcnn" and float(model.rpn.score_thresh) == 0.0:
            # RPN score threshold 0 keeps every anchor as a proposal, so blank images still detect
            # things (Mask/Keypoint R-CNN R50): 0.05 drops the blank objectness (at most 0.0125).
            model.rpn.score_thresh = RPN_SCORE_THRESH
            notes["rpn_score_thresh"] = RPN_SCORE_THRESH
        notes["rpn_objectness"] = _objectness(model, real, uniform)
        notes["class_scale"] = _class_scores(model, real)
        if family != "rcnn":
            from recipekit.sources.torchvision.roi_extras import calibrate as extras

            notes["roi_extras"] = extras(model, real)
    else:
        from recipekit.sources.torchvision.one_stage import calibrate as one_stage

        notes["one_stage"] = one_stage(model, real, uniform, family)
    return notes


def _images(recipe: Recipe) -> list[torch.Tensor]:
    from pathlib import Path

    from recipekit.onnx.preprocess import resize
    from recipekit.sources.synthetic import SAMPLE_IMAGES, rgb01, sample_images

    pre = recipe.input.preprocess
    pre = pre.model_copy(update={"resize": "letterbox"}) if pre.resize == "none" else pre
    return [rgb01(resize(img, recipe.export.imgsz, pre)[0]) for img in sample_images(SAMPLE_IMAGES, Path("."))]


def _uniform(value: int, hw: tuple[int, int]) -> torch.Tensor:
    import torch

    return torch.full((3, *hw), value / 255.0)


def _rpn_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The RPN head's features (after its conv) at every position of every level: (P, C)."""
    import torch

    feats: list[torch.Tensor] = []
    hook = model.rpn.head.conv.register_forward_hook(lambda _m, _i, o: feats.append(o))
    try:
        with torch.no_grad():
            images, _ = model.transform([x])
            model.rpn.head(list(model.backbone(images.tensors).values()))
    finally:
        hook.remove()
    return torch.cat([f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]) for f in feats])


def _objectness(model: nn.Module, real: list[torch.Tensor], uniform: list[torch.Tensor]) -> dict[str, float]:
    import torch

    fr = [_rpn_features(model, x) for x in real]
    fu = torch.cat([_rpn_features(model, x) for x in uniform])
    w = _lda_direction(torch.cat(fr), fu)
    top_uniform = float((fu @ w).max())
    top_real = min(float((f @ w).max()) for f in fr)
    if top_real <= top_uniform:
        raise RecipeKitError("synthetic weights: real images do not stand out from blank ones; try another source.seed")
    thresh = max(float(model.rpn.score_thresh), 1e-3)
    lo, hi = _logit(thresh / 4), 0.0
    a = (hi - lo) / (top_real - top_uniform)
    head = model.rpn.head.cls_logits
    with torch.no_grad():
        head.weight.copy_((a * w)[None, :, None, None].expand_as(head.weight))
        head.bias.copy_(lo - a * top_uniform - ANCHOR_STEP * torch.arange(head.out_channels))
    return {"scale": a, "top_uniform": top_uniform, "top_real": top_real, "anchor_step": ANCHOR_STEP}


def _lda_direction(real: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Fisher's discriminant (ridge RIDGE x mean variance): the plain mean difference is not enough,
    blank images' border features reach past the weakest real image's best position."""
    import torch

    both = torch.cat([real, uniform])
    cov = torch.cov(both.T)
    ridge = RIDGE * cov.diagonal().mean() * torch.eye(cov.shape[0])
    w = torch.linalg.solve(cov + ridge, real.mean(0) - uniform.mean(0))
    return w / w.norm()


def _class_scores(model: nn.Module, real: list[torch.Tensor]) -> float:
    import torch

    feats: list[torch.Tensor] = []
    predictor = model.roi_heads.box_predictor
    hook = predictor.register_forward_hook(lambda _m, i, _o: feats.append(i[0].flatten(1)))
    try:
        with torch.no_grad():
            for x in real:
                model([x])
    finally:
        hook.remove()
    x = torch.cat(feats)
    mean = x.mean(0)
    score = predictor.cls_score
    with torch.no_grad():
        s = CLASS_SPREAD / max(float((score.weight @ (x - mean).T).std()), 1e-12)
        score.weight.mul_(s)
        score.bias.copy_(-(score.weight @ mean))
    return s


def _logit(p: float) -> float:
    return math.log(p / (1 - p))
