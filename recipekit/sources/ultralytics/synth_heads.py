"""Synthetic scores for the heads that are not YOLO class convolutions: classifiers and RT-DETR.

The same idea as `synth`: the layer that produces class logits becomes a template matcher on its
own input features, so the sample photos score a few classes confidently and a blank image none.
- Classify: the linear layer after global pooling. Class k's template is sample image k's pooled
  feature, on a direction where blank images and the other photos score BLANK_LOGIT; the other
  classes stay at 0, so a blank image's top probability is about 1 / classes while each photo's
  own class scores high.
- RTDETRDecoder: the score head of the decoder layer inference reads (`eval_idx`). Its input (one
  feature per query) does not depend on that head, so templates picked from the photos' queries
  score exactly PEAK_LOGIT there (classifiers: CLASSIFY_PEAK); every blank-image query stays at or below BLANK_LOGIT.

The logit levels and the template choice are defined here and shared with `synth` (the YOLO head),
which dispatches to these heads: `synth` imports this module, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recipekit.sources import templates as tm

TEMPLATES_PER_IMAGE = 3
PEAK_LOGIT = 3.0  # logit at a template anchor
BLANK_LOGIT = -4.0  # highest logit allowed on a blank image (score 0.018)
FLOOR_LOGIT = -30.0  # logits of classes without a template (detectors: never scored)
KEEP = 3  # RT-DETR: queries per template that may score above BLANK_LOGIT
CLASSIFY_PEAK = 12.0  # a photo's class: probability ~0.99 against 1000 classes at logit 0


def pick_templates(real: list[Any], blank: Any) -> list[tuple[Any, Any, float]]:
    """A few templates per sample image: features furthest from any blank image's (sources.templates)."""
    return tm.templates(real, blank, TEMPLATES_PER_IMAGE)


def _inputs_of(model: Any, layer: Any, x: Any) -> Any:
    """The input of `layer` for one batch-1 input: (C, N) with N the layer's rows (queries, or 1)."""
    import torch

    seen: list[Any] = []
    hook = layer.register_forward_hook(lambda _m, i, _o: seen.append(i[0]))
    try:
        with torch.no_grad():
            model(x)
    finally:
        hook.remove()
    feats = seen[-1]
    return feats.reshape(-1, feats.shape[-1]).T


def _calibrate(model: Any, layer: Any, batches: list[Any], blanks: list[Any], floor: float, peak: float) -> dict:
    import torch

    real = [_inputs_of(model, layer, b) for b in batches]
    blank = torch.cat([_inputs_of(model, layer, b) for b in blanks], dim=1)
    few = blank.shape[1] + len(real) < blank.shape[0]
    found = tm.off_hull(real, blank) if few else tm.narrow(pick_templates(real, blank), torch.cat(real, dim=1), KEEP)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.fill_(floor)
    n = tm.fit(layer.weight, layer.bias, list(range(layer.out_features)), found, peak, BLANK_LOGIT)
    return {"templates": n, "features": int(blank.shape[0])}


def classify(model: Any, batches: list[Any], blanks: list[Any]) -> dict[str, Any]:
    return {"linear": _calibrate(model, model.model[-1].linear, batches, blanks, 0.0, CLASSIFY_PEAK)}


def rtdetr(model: Any, batches: list[Any], blanks: list[Any]) -> dict[str, Any]:
    decoder = model.model[-1]
    layer = decoder.dec_score_head[decoder.decoder.eval_idx]
    return {"dec_score_head": _calibrate(model, layer, batches, blanks, FLOOR_LOGIT, PEAK_LOGIT)}


SYNTHESIZERS: dict[str, Callable[[Any, list[Any], list[Any]], dict[str, Any]]] = {
    "Classify": classify,
    "RTDETRDecoder": rtdetr,
}
