"""Synthetic heads of one-stage torchvision detectors (RetinaNet, FCOS, SSD, SSDlite).

Seeded weights score every anchor near the head's prior: RetinaNet finds a dozen boxes in a blank
image and hits its cap on photos, which makes parity a comparison of cut-off rankings. So the class
convolution becomes a template matcher (`recipekit.sources.templates`) on its own input patches
(unfolded to kernel size): a few positions of each sample photo, one class each, on anchor 0, score
PEAK_LOGIT there; at most KEEP patches per template score above the blank level; every patch of a
uniform image scores below a quarter of the score threshold. Sigmoid heads (RetinaNet, FCOS) keep
other classes at FLOOR; softmax heads (SSD) keep the background at 0 and calibrate one level (the
largest; others only background). FCOS' centerness is made a constant 0.99 and its box regression
anchor-sized (seeded regression is ~0: zero-sized boxes). Photos then give at most templates x KEEP
candidates, far below any cap.
"""

from __future__ import annotations

import math
from typing import Any

PEAK_LOGIT = 3.0
FLOOR_LOGIT = -30.0
KEEP = 3
PER_IMAGE = 3
CENTERNESS_LOGIT = 5.0


def _patches(conv: Any, x: Any) -> Any:
    """A conv input (1, C, H, W) unfolded to its receptive fields: (C * kh * kw, H' * W')."""
    import torch.nn.functional as F

    return F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)[0]


def _conv_inputs(model: Any, convs: list[Any], x: Any) -> list[list[Any]]:
    """Per conv, the unfolded inputs of every call (a shared head conv runs once per level)."""
    import torch

    seen: list[list[Any]] = [[] for _ in convs]
    hooks = [
        c.register_forward_hook(lambda m, i, _o, k=k: seen[k].append(_patches(m, i[0]))) for k, c in enumerate(convs)
    ]
    try:
        with torch.no_grad():
            model([x])
    finally:
        for h in hooks:
            h.remove()
    return seen


def _unique(feats: Any) -> Any:
    """Distinct columns: a uniform image's interior positions all carry the same patch."""
    import torch

    return torch.unique(torch.round(feats * 1e4) / 1e4, dim=1)


def _set_conv(conv: Any, anchors: int, classes: int, found: list[Any], blank: float, softmax: bool) -> int:
    """Zero the conv; background 0 (softmax) and other classes FLOOR; templates on anchor 0, classes 1.."""
    import torch

    from recipekit.sources.templates import fit

    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(FLOOR_LOGIT)
        if softmax:
            conv.bias[torch.arange(anchors) * classes] = 0.0
        flat = conv.weight.view(conv.out_channels, -1)
        return fit(flat, conv.bias, list(range(1, classes)), found, PEAK_LOGIT, blank)


def _heads(model: Any, family: str) -> tuple[list[Any], int, bool]:
    """The class convs to calibrate, the number of classes, and whether scores are a softmax."""
    head = model.head.classification_head
    if family == "ssd":
        convs = [m[-1] if hasattr(m, "__getitem__") else m for m in head.module_list]
        return convs, int(head.num_columns), True
    return [head.cls_logits], int(head.num_classes), False


def _blank_logit(model: Any, family: str) -> float:
    """A quarter of the score threshold (FCOS scores sqrt(class * centerness): squared)."""
    p = max(float(model.score_thresh), 1e-4) / 4
    p = p * p if family == "fcos" else p
    return math.log(p / (1 - p))


def calibrate(model: Any, real: list[Any], uniform: list[Any], family: str) -> dict[str, Any]:
    import torch

    from recipekit.sources.templates import narrow, templates

    if family == "fcos":
        _fcos_regression(model)
    convs, classes, softmax = _heads(model, family)
    real_in = [_conv_inputs(model, convs, x) for x in real]
    blank_in = [_conv_inputs(model, convs, x) for x in uniform]
    level = max(range(len(convs)), key=lambda k: real_in[0][k][0].shape[1]) if softmax else 0
    blank = _blank_logit(model, family)
    notes: dict[str, Any] = {"blank_logit": blank, "templates": 0}
    for k, conv in enumerate(convs):
        anchors = conv.out_channels // classes
        if k != level:
            _set_conv(conv, anchors, classes, [], blank, softmax)
            continue
        photos = [torch.cat(r[k], dim=1) for r in real_in]
        flat = _unique(torch.cat([torch.cat(b[k], dim=1) for b in blank_in], dim=1))
        found = narrow(templates(photos, flat, PER_IMAGE), torch.cat(photos, dim=1), KEEP)
        notes["templates"] = _set_conv(conv, anchors, classes, found, blank, softmax)
        notes["level"] = k
    return notes


def _fcos_regression(model: Any) -> None:
    """Centerness a constant sigmoid(5); box regression 1 (an anchor-sized box) instead of ~0."""
    import torch

    reg = model.head.regression_head
    with torch.no_grad():
        reg.bbox_ctrness.weight.zero_()
        reg.bbox_ctrness.bias.fill_(CENTERNESS_LOGIT)
        reg.bbox_reg.weight.mul_(0.01)
        reg.bbox_reg.bias.fill_(1.0)
