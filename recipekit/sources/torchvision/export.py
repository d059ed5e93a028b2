"""Export a torchvision detector with the TorchScript-based exporter, traced on a real image.

The ONNX input is one preprocessed image, (1, 3, H, W) float32 RGB in 0..1 (recipe preprocess:
scale 1/255, mean 0, std 1). The detector's own transform stays inside the graph: ImageNet
normalisation and a resize that is a no-op at the export size (see `_tv_build.pin_transform`).
Outputs are per-image variable-length lists: boxes (N, 4) xyxy in input pixels, scores (N,),
labels (N,) int64, and what the model adds: Mask R-CNN's masks (N, 1, H, W) probabilities pasted
into the input, Keypoint R-CNN's keypoints (N, K, 3) and keypoints_scores (N, K). The dynamo
exporter is not used: it fails on torchvision's batched_nms.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core.errors import RecipeError

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from recipekit.recipe.schema import Recipe

BASE_OUTPUTS = ["boxes", "scores", "labels"]
DEFAULT_INPUT = "images"


def outputs_of(model: nn.Module) -> list[str]:
    """The graph's outputs: boxes, scores, labels, then masks (Mask R-CNN) or keypoints and
    keypoints_scores (Keypoint R-CNN): every field the model returns, none dropped."""
    heads = getattr(model, "roi_heads", None)
    extra = []
    if heads is not None and heads.has_mask():
        extra.append("masks")
    if heads is not None and heads.has_keypoint():
        extra += ["keypoints", "keypoints_scores"]
    return BASE_OUTPUTS + extra


def output_kinds(
    outputs: list[str], score_threshold: float | None = None, cap: int | None = None
) -> dict[str, dict[str, Any]]:
    """One detection list "dets" (no batch axis), one whole-output field per output: boxes in input
    pixels (xyxy), probabilities, class ids, mask probabilities (N, 1, H, W) pasted into the input
    (compared as mask IoU), keypoints (N, K, 3) x, y in pixels and visibility 1, keypoint logits.
    `cap`: the model's detections per image: a reference at it is compared clear of the cut."""
    from recipekit.recipe import outputs as o

    fields = {
        "boxes": o.whole("box", format="xyxy"),
        "scores": o.whole("score"),
        "labels": o.whole("class"),
        "masks": o.whole("mask"),
        "keypoints": o.whole("keypoints", dims=3, visibility="probability"),
        "keypoints_scores": o.whole("keypoint_scores", unit="logit"),
    }
    kinds = {
        n: o.Detections(
            group="dets", batch_axis=None, field=fields[n], score_threshold=score_threshold, max_detections=cap
        )
        for n in outputs
    }
    return o.declare(kinds, outputs)


def check_recipe(recipe: Recipe) -> None:
    """What the graph's input definition requires of the recipe; one message per rule."""
    from recipekit.onnx.preprocess import RGB01_NCHW, mismatch

    exp = recipe.export
    bad = mismatch(recipe.input.preprocess, RGB01_NCHW)
    if bad:
        key, want, got = bad
        raise RecipeError(
            "recipe",
            f"input.preprocess.{key}",
            "torchvision detectors take RGB 0..1 NCHW pixels and normalise inside the graph: expected "
            f"{key}={want!r}, got {got!r}",
        )
    if exp.batch.max != 1 or exp.dynamic_batch:
        raise RecipeError(
            "recipe",
            "export.batch",
            "torchvision detectors return a variable-length list per image: export batch 1 (min = opt = max = 1)",
        )
    if exp.nms is not None:
        raise RecipeError(
            "recipe",
            "export.nms",
            "torchvision detectors run their own NMS: leave export.nms unset (tune source.box_nms_thresh)",
        )
    if not recipe.input.samples:
        raise RecipeError(
            "recipe",
            "input.samples",
            "torchvision detectors are traced on a real image (a random one bakes data-dependent sizes into the "
            "graph): name at least one sample, e.g. ultralytics:bus.jpg",
        )


def sample_input(recipe: Recipe) -> tuple[str, np.ndarray]:
    """The recipe's first sample, preprocessed at the export size: the image the graph is traced on."""
    from recipekit.onnx.preprocess import image_tensor, resolve_sample

    spec = recipe.input.samples[0]
    path = resolve_sample(spec, Path(recipe.base_dir or "."))
    return spec, image_tensor(path, recipe.export.imgsz, recipe.input.preprocess)


def wrap(model: nn.Module, names: list[str]) -> nn.Module:
    """(1, 3, H, W) tensor -> the outputs `names`: the list-of-images API as a graph signature."""
    from torch import nn

    class ListOutputs(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):  # noqa: ANN001, ANN202 - traced
            out = self.inner([x[0]])[0]
            return tuple(out[n] for n in names)

    return ListOutputs(model).eval()


def export_onnx(model: nn.Module, x: np.ndarray, path: Path, recipe: Recipe, input_name: str) -> None:
    import warnings

    import torch

    names = outputs_of(model)
    axes: dict[str, Any] = {name: {0: "detections"} for name in names}
    if recipe.export.dynamic.hw:
        axes[input_name] = {2: "height", 3: "width"}
        if "masks" in axes:
            axes["masks"].update({2: "height", 3: "width"})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrap(model, names),
            (torch.from_numpy(x),),
            str(path),
            dynamo=False,
            opset_version=recipe.export.opset,
            input_names=[input_name],
            output_names=names,
            dynamic_axes=axes,
        )


def run_torch(model: nn.Module, x: np.ndarray) -> list[np.ndarray]:
    """The eager model on a (1, 3, H, W) batch: its outputs (`outputs_of`) as numpy, ONNX order."""
    import torch

    if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise RecipeError(
            "recipe", "export.batch", f"torchvision detectors take one (1, 3, H, W) image, got {list(x.shape)}"
        )
    with torch.no_grad():
        out = model([torch.from_numpy(x[0].astype("float32"))])[0]
    return [out[k].numpy() for k in outputs_of(model)]


def state_digest(model: nn.Module) -> str:
    """sha256 over the state dict: the reference must be the very model that was exported."""
    import hashlib

    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()
