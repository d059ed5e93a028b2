"""Synthetic mask and keypoint heads of Mask R-CNN and Keypoint R-CNN.

Seeded mask logits sit near 0, so every mask pixel is a probability near 0.5 and a mask IoU at 0.5
flips on rounding. The mask predictor's logits are centred on the sample photos' detections and
scaled to a spread of MASK_SPREAD, so most pixels are clearly in or out. Keypoint heatmaps are
centred and scaled alike (KEYPOINT_SPREAD): their argmax decides each keypoint, and a larger spread
between a heatmap's peak and its other maxima keeps that choice away from rounding.
"""

from __future__ import annotations

from typing import Any

MASK_SPREAD = 6.0
KEYPOINT_SPREAD = 4.0


def _outputs_of(model: Any, layer: Any, real: list[Any]) -> Any:
    import torch

    seen: list[Any] = []
    hook = layer.register_forward_hook(lambda _m, _i, o: seen.append(o))
    try:
        with torch.no_grad():
            for x in real:
                model([x])
    finally:
        hook.remove()
    return torch.cat([o.transpose(0, 1).flatten(1) for o in seen], dim=1) if seen else None


def _spread(model: Any, layer: Any, real: list[Any], spread: float) -> dict[str, float] | None:
    """Per output channel: logits centred on the photos' values and scaled to `spread` (std)."""
    import torch

    out = _outputs_of(model, layer, real)
    if out is None or out.shape[1] < 2:
        return None
    mean, std = out.mean(dim=1), out.std(dim=1).clamp_min(1e-12)
    scale = spread / std
    with torch.no_grad():
        shape = (1, -1) if isinstance(layer, torch.nn.ConvTranspose2d) else (-1, 1)
        layer.weight.mul_(scale.view(*shape, *([1] * (layer.weight.dim() - 2))))
        layer.bias.copy_(scale * (layer.bias - mean))
    return {"mean_scale": float(scale.mean())}


def calibrate(model: Any, real: list[Any]) -> dict[str, Any]:
    heads = model.roi_heads
    notes: dict[str, Any] = {}
    if heads.has_mask():
        notes["mask_logits"] = _spread(model, heads.mask_predictor.mask_fcn_logits, real, MASK_SPREAD)
    if heads.has_keypoint():
        notes["keypoint_heatmaps"] = _spread(model, heads.keypoint_predictor.kps_score_lowres, real, KEYPOINT_SPREAD)
    return notes
