"""A replacement for ultralytics' `NMSModel.forward` in which no tensor can ever be zero-sized.

Why: ultralytics filters candidates with a boolean mask (NonZero + GatherND), runs NMS on what is
left and pads the kept rows up to `max_det` (Pad). When nothing passes the score threshold every
one of those tensors is zero-sized, and the JSEP WebGPU kernels of onnxruntime-web reject zero-sized
inputs (field notes, case 1). Writing into a preallocated output alone still leaves the NonZero and
NonMaxSuppression outputs empty, so this forward adds one *sentinel* candidate per image:

- an all-zero row (box (0, 0, 0, 0), score 0, class 0, zero keypoints/extras), always selected by
  the mask, so NonZero and every Gather get at least one row;
- its zero-area box overlaps nothing (ORT and torchvision both treat IoU with a zero-area box as 0)
  and its score 0 is below every real candidate (those are > conf >= 0), so NMS keeps it last and
  it can never suppress or reorder a real detection;
- the kept indices are padded with the sentinel's index up to `max_det`, then gathered: the output
  is (B, max_det, C) by construction, rows past the detections are the sentinel's zeros, exactly
  as ultralytics' zero padding. No Pad, no dynamic-size write.

Covers detect, pose and segment (axis-aligned boxes) for ONNX export; other formats and OBB keep
ultralytics' own forward (OBB raises: its rotated-IoU NMS is not covered here).
"""

from __future__ import annotations

from typing import Any

from recipekit.core.errors import RecipeKitError


def _with_sentinel(pred: Any, nc: int, extra: int, conf: float) -> tuple[Any, ...]:
    """Split predictions (B, A, 4+nc+extra) and prepend the all-zero sentinel candidate (index 0).

    Slices, not `split`, so no zero-width extras tensor exists for plain detection models.
    """
    import torch

    b = pred.shape[0]
    boxes, scores = pred[..., :4], pred[..., 4 : 4 + nc]
    scores, classes = scores.max(dim=-1)
    mask = scores > conf
    boxes = torch.cat([boxes.new_zeros(b, 1, 4), boxes], 1)
    scores = torch.cat([scores.new_zeros(b, 1), scores], 1)
    classes = torch.cat([classes.new_zeros(b, 1), classes], 1)
    mask = torch.cat([mask.new_ones(b, 1), mask], 1)
    if not extra:  # detect: no extras column at all (a (B, A, 0) split would be zero-sized on every input)
        return boxes, scores, classes, [None] * b, mask
    extras = torch.cat([pred.new_zeros(b, 1, extra), pred[..., 4 + nc :]], 1)
    return boxes, scores, classes, extras, mask


def _one_image(self: Any, x: Any, box: Any, score: Any, cls: Any, extra: Any, mask: Any) -> Any:
    """NMS for one image; returns (max_det, C) with the sentinel's zero rows after the detections."""
    import torch
    from torchvision.ops import nms

    box, score, cls = box[mask], score[mask], cls[mask]
    multiplier = 1 / max(len(self.model.names), 1)
    nmsbox = multiplier * (box / torch._shape_as_tensor(x)[2:].max().to(box.dtype))
    if not self.args.agnostic_nms:  # class-wise NMS through a per-class box offset, as ultralytics does
        nmsbox = nmsbox + cls.view(cls.shape[0], 1).expand(cls.shape[0], 4).to(box.dtype) * multiplier
    keep = nms(nmsbox, score, self.args.iou)  # >= 1 entry: the sentinel (index 0) is always kept
    max_det = self.args.max_det
    keep = torch.cat([keep, keep.new_zeros(max_det)])[:max_det]  # pad with the sentinel's index
    parts = [box, score.view(-1, 1), cls.view(-1, 1).to(box.dtype)] + ([] if extra is None else [extra[mask]])
    rows = torch.cat(parts, dim=-1)
    return rows[keep]


def fixed_shape_forward(self: Any, x: Any, original: Any) -> Any:
    """NMSModel.forward for ONNX export: same outputs, no zero-sized tensor (see module docstring)."""
    import torch

    if self.args.format != "onnx":
        return original(self, x)
    if self.obb:
        raise RecipeKitError("fixed-shape-nms: OBB models are not supported (rotated NMS); remove the fix")
    preds = self.model(x)
    pred = preds[0] if isinstance(preds, tuple) else preds
    bs = pred.shape[0]
    pred = pred.transpose(-1, -2)
    nc = len(self.model.names)
    extra = pred.shape[-1] - (4 + nc)
    if self.args.dynamic and self.args.batch > 1:  # the traced loop covers args.batch images: pad, >= 1 row
        n_pad = (self.args.batch - torch._shape_as_tensor(pred)[0]).clamp(min=0) + 1
        pred = torch.cat((pred, pred.new_zeros(n_pad, *pred.shape[1:])))
    boxes, scores, classes, extras, mask = _with_sentinel(pred, nc, extra, self.args.conf)
    rows = [_one_image(self, x, boxes[i], scores[i], classes[i], extras[i], mask[i]) for i in range(bs)]
    out = torch.stack(rows)[:bs]  # traced: bs images unrolled, sliced to the runtime batch
    return (out, preds[1]) if self.model.task == "segment" else out
