"""Building an mmpose RTMO model: weights (file or synthetic) and its ordinary-mode predictions.

The reference is the model as mmpose users run it (`BottomupPoseEstimator` in eval mode, not
`switch_to_deploy`), so defects of the deploy path (precomputed priors, cached positional encoding)
show up as parity failures instead of being copied into the reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.sources.mmpose.mmcv_compat import install as install_compat

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

SYNTH_PRIORS = {0.5: 8, 0.05: 40}
"""Synthetic weights: per calibration image, about this many priors score above 0.5 and above 0.05."""
SYNTH_BOX = ((0.0, 0.3), (0.0, 0.3), (0.7, 0.3), (1.4, 0.3))
"""Synthetic weights: (mean, std) of the box outputs dx, dy, log w, log h (in strides): boxes of
about 2x4 strides, centred near their prior, instead of random weights' slivers hundreds of px wide."""

SYNTH_HEATMAP_STD = 3.0
"""Synthetic weights: spread of the 1-D keypoint heatmap logits over their bins (see below)."""


def build(cfg: Any, checkpoint: Path | None = None, trust_code: bool = False) -> nn.Module:
    """The model of an mmpose config in eval mode, with `checkpoint` loaded (never run) if given."""
    install_compat()
    from mmengine.runner.checkpoint import load_checkpoint
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules

    register_all_modules()
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        from recipekit.sources.mmpose.loading import mmengine_loading

        with mmengine_loading(trust_code):
            load_checkpoint(model, str(checkpoint), map_location="cpu", logger="silent")
    return model.eval()


def _head_outputs(model: nn.Module, x: torch.Tensor) -> tuple[Any, ...]:
    return model.head.forward(model.extract_feat(x))


def _rescale(convs: Any, scale: torch.Tensor, offset: torch.Tensor) -> None:
    """Make every conv in `convs` output `scale * out + offset` per channel (1x1 output convs)."""
    for conv in convs:
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
        conv.bias.copy_(conv.bias * scale + offset)


def _calibrate_outputs(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Give random output layers the statistics a trained RTMO has on the sample images.

    Random weights score every prior near sigmoid(bias) = 0.01 (RTMO's prior-probability init), so
    nothing passes a 0.1 threshold, and decode boxes as slivers. An affine map of the class logits puts
    a few priors per image above 0.5 (which ones depends on the image, as with a trained detector);
    one of the box outputs gives boxes of a few strides. Keypoints then follow from the boxes.
    """
    import math

    import torch

    head = model.head.head_module
    with torch.no_grad():
        outs = [_head_outputs(model, b) for b in batches]
        logits = torch.cat([c.flatten() for o in outs for c in o[0]])
        per_image = logits.numel() / sum(b.shape[0] for b in batches)
        (p_hi, n_hi), (p_lo, n_lo) = sorted(SYNTH_PRIORS.items(), reverse=True)
        q_hi, q_lo = (torch.quantile(logits, 1 - n / per_image) for n in (n_hi, n_lo))
        l_hi, l_lo = (math.log(p / (1 - p)) for p in (p_hi, p_lo))
        a = (l_hi - l_lo) / (q_hi - q_lo).clamp_min(1e-6)
        _rescale(head.out_cls, a.view(1), (l_hi - a * q_hi).view(1))
        box = torch.cat([c.permute(1, 0, 2, 3).flatten(1) for o in outs for c in o[1]], 1)
        mean, std = box.mean(1), box.std(1).clamp_min(1e-6)
        t_mean, t_std = (torch.tensor(v) for v in zip(*SYNTH_BOX, strict=True))
        _rescale(head.out_bbox, t_std / std, t_mean - mean * t_std / std)


def _calibrate_heatmaps(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Soften the keypoint classifier's 1-D heatmaps to the spread a trained RTMO has.

    Random DCC weights give heatmap logits with a spread of ~50 over the bins: a near one-hot
    softmax whose winning bin flips on float rounding, so keypoints would jump by a bin between
    PyTorch and ONNX Runtime. Scaling the bin encoders (x_fc, y_fc) scales those logits linearly.
    """
    import torch

    dcc, spreads = model.head.dcc, []
    original = dcc._apply_softmax  # noqa: SLF001 - the one place mmpose turns logits into heatmaps

    def record(x_hms: torch.Tensor, y_hms: torch.Tensor) -> Any:
        spreads.append(torch.cat([x_hms.std(-1).flatten(), y_hms.std(-1).flatten()]))
        return original(x_hms, y_hms)

    dcc._apply_softmax = record  # noqa: SLF001
    try:
        for batch in batches:
            predict(model, batch.numpy())
    finally:
        del dcc._apply_softmax  # noqa: SLF001 - the class's method again
    if spreads:
        scale = SYNTH_HEATMAP_STD / torch.cat(spreads).mean().clamp_min(1e-6)
        with torch.no_grad():
            for fc in (dcc.x_fc, dcc.y_fc):
                fc.weight.mul_(scale)
                fc.bias.mul_(scale)


def synthesize(cfg: Any, seed: int, inputs: list[np.ndarray], path: Path) -> nn.Module:
    """Seeded architecture weights, BatchNorm statistics and output layers calibrated on `inputs`
    (preprocessed 1x3xHxW images, one batch), saved as a checkpoint at `path`.

    Deterministic: the same config, seed and images give the same weights.
    """
    import numpy as np
    import torch

    from recipekit.sources.synthetic import recalibrate_bn, seeded

    batches = [torch.from_numpy(np.concatenate(inputs))]
    with seeded(seed):
        model = build(cfg)
        model.init_weights()
    recalibrate_bn(model, batches, forward=_head_outputs)
    _calibrate_outputs(model, batches)
    _calibrate_heatmaps(model, batches)
    torch.save({"state_dict": model.state_dict(), "meta": {"init": "synthetic", "seed": seed}}, str(path))
    return model.eval()


def _decode_one(head: Any, outs: tuple, i: int, cfg: dict) -> tuple[Any, Any]:
    """RTMOHead.predict (mmpose 1.3.2) for image `i`, minus its final box clamping: priors from the
    real feature-map sizes, score filter, greedy NMS, DCC keypoint decoding."""
    import torch
    from mmdet.models.utils import filter_scores_and_topk
    from mmpose.evaluation.functional import nms_torch
    from mmpose.structures.bbox import bbox_xyxy2cs

    cls_scores, bbox_preds, _, kpt_vis, pose_vecs = outs
    sizes = [c.shape[2:] for c in cls_scores]
    priors = torch.cat(head.prior_generator.grid_priors(sizes, dtype=torch.float32, device="cpu"))
    strides = torch.cat([priors.new_full((s.numel(),), st) for s, st in zip(sizes, head.featmap_strides, strict=True)])
    flat = head._flatten_predictions  # noqa: SLF001 - mmpose's own flattening, as predict uses it
    scores, labels = flat(cls_scores)[i].sigmoid().max(1, keepdim=True)
    bboxes = head.decode_bbox(flat(bbox_preds)[i : i + 1], priors, strides)[0]
    scores, _, keep, _ = filter_scores_and_topk(
        scores, cfg["score_thr"], cfg.get("nms_pre", 100000), results={"labels": labels[:, 0]}
    )
    bboxes, vis, vecs, grids = bboxes[keep], flat(kpt_vis)[i].sigmoid()[keep], flat(pose_vecs)[i][keep], priors[keep]
    if bboxes.numel() == 0:
        return bboxes.new_zeros((0, 5)), bboxes.new_zeros((0, head.num_keypoints, 3))
    nms = nms_torch(bboxes, scores, cfg["nms_thr"])[: cfg["max_per_img"]]
    bboxes, scores, vis, vecs, grids = bboxes[nms], scores[nms], vis[nms], vecs[nms], grids[nms]
    kpts = head.dcc.forward_test(vecs, torch.cat(bbox_xyxy2cs(bboxes, head.bbox_padding), dim=1), grids)
    return torch.cat([bboxes, scores[:, None]], 1), torch.cat([kpts, vis[..., None]], 2)


def predict(model: nn.Module, x: np.ndarray) -> list[np.ndarray]:
    """Ordinary-mode RTMO predictions laid out as the exported graph's: dets (B, N, 5: x1 y1 x2 y2
    score) and keypoints (B, N, K, 3: x y score), rows by falling score, zero rows pad the batch.

    Boxes are left unclamped, as mmdeploy's graph leaves them (clamping is the consumer's job).
    """
    import numpy as np
    import torch

    with torch.no_grad():
        outs = model.head.forward(model.extract_feat(torch.from_numpy(x)))
        rows = [_decode_one(model.head, outs, i, dict(model.test_cfg)) for i in range(x.shape[0])]
    n = max(1, max(len(d) for d, _ in rows))
    dets = np.zeros((len(rows), n, 5), np.float32)
    kpts = np.zeros((len(rows), n, model.head.num_keypoints, 3), np.float32)
    for i, (d, k) in enumerate(rows):
        dets[i, : len(d)], kpts[i, : len(k)] = d.numpy(), k.numpy()
    return [dets, kpts]
