"""Export a torchvision detector with the TorchScript-based exporter, traced on a real image.

The ONNX input is one preprocessed image, (1, 3, H, W) float32 RGB in 0..1 (recipe preprocess:
scale 1/255, mean 0, std 1). The detector's own transform stays inside the graph: ImageNet
normalisation and a resize that is a no-op at the export size (see `_tv_build.pin_transform`).
Outputs are per-image variable-length lists: boxes (N, 4) xyxy in input pixels, scores (N,),
labels (N,) int64. The dynamo exporter is not used: it fails on torchvision's batched_nms.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core.errors import RecipeError

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from recipekit.recipe.schema import Recipe

OUTPUTS = ["boxes", "scores", "labels"]
DEFAULT_INPUT = "images"
FIELDS = {"boxes": "box", "scores": "score", "labels": "class"}


def output_kinds(score_threshold: float | None = None) -> dict[str, dict[str, Any]]:
    """One detection list "dets" of one image (no batch axis), a whole-output field per output: boxes
    (N, 4) xyxy in input pixels, scores (N,) probabilities, labels (N,) class ids."""
    from recipekit.recipe import outputs as o

    return o.declare(
        {
            name: o.Detections(group="dets", batch_axis=None, field=o.whole(role), score_threshold=score_threshold)
            for name, role in FIELDS.items()
        }
    )


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


def wrap(model: nn.Module) -> nn.Module:
    """(1, 3, H, W) tensor -> (boxes, scores, labels): the list-of-images API as a graph signature."""
    from torch import nn

    class ListOutputs(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):  # noqa: ANN001, ANN202 - traced
            out = self.inner([x[0]])[0]
            return out["boxes"], out["scores"], out["labels"]

    return ListOutputs(model).eval()


def export_onnx(model: nn.Module, x: np.ndarray, path: Path, recipe: Recipe, input_name: str) -> None:
    import warnings

    import torch

    axes: dict[str, Any] = {name: {0: "detections"} for name in OUTPUTS}
    if recipe.export.dynamic.hw:
        axes[input_name] = {2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrap(model),
            (torch.from_numpy(x),),
            str(path),
            dynamo=False,
            opset_version=recipe.export.opset,
            input_names=[input_name],
            output_names=OUTPUTS,
            dynamic_axes=axes,
        )


def run_torch(model: nn.Module, x: np.ndarray) -> list[np.ndarray]:
    """The eager model on a (1, 3, H, W) batch: [boxes, scores, labels] as numpy, ONNX order."""
    import torch

    if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise RecipeError(
            "recipe", "export.batch", f"torchvision detectors take one (1, 3, H, W) image, got {list(x.shape)}"
        )
    with torch.no_grad():
        out = model([torch.from_numpy(x[0].astype("float32"))])[0]
    return [out[k].numpy() for k in OUTPUTS]


def state_digest(model: nn.Module) -> str:
    """sha256 over the state dict: the reference must be the very model that was exported."""
    import hashlib

    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()
