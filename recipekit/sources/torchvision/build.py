"""Build a torchvision detector as the recipe names it: builder, weights file or synthetic weights.

recipekit never downloads weights: a torchvision weights name resolves to the file torch.hub would
have cached, and a missing file is an error that says where it was looked for and how to build
with architecture-only (`init: synthetic`) weights instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core.errors import RecipeError

if TYPE_CHECKING:
    from torch import nn

    from recipekit.recipe.schema import Recipe

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")


def _hub_checkpoints() -> Path:
    """torch.hub's checkpoint folder, computed as torch does but without importing torch."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(home) / "hub" / "checkpoints"


def _is_path(spec: str) -> bool:
    return "/" in spec or os.sep in spec or spec.endswith(WEIGHT_SUFFIXES)


def _weights_enum(builder: str, spec: str) -> Any:
    """'DEFAULT', 'COCO_V1' or 'FasterRCNN_..._Weights.COCO_V1' -> the torchvision weights enum member."""
    from torchvision.models import get_model_weights

    enum = get_model_weights(builder)
    member = spec.rpartition(".")[2]
    try:
        return enum[member] if member != "DEFAULT" else enum.DEFAULT
    except KeyError:
        known = ", ".join(["DEFAULT", *enum.__members__])
        raise RecipeError(
            "recipe",
            "source.weights",
            f"{spec!r} is not a weights name of {builder} (known: {known}) nor a path ending in "
            f"{'/'.join(WEIGHT_SUFFIXES)}",
        ) from None


def resolve_weights(builder: str, spec: str, base: Path) -> tuple[Path, Any]:
    """The weights file on disk (and the torchvision enum member, if `spec` is a name); else an error."""
    if _is_path(spec):
        path, member = (base / spec).expanduser().resolve(), None
    else:
        member = _weights_enum(builder, spec)
        path = _hub_checkpoints() / os.path.basename(member.url)
    if not path.is_file():
        what = f"torchvision weights {spec!r} ({member.url})" if member is not None else f"weights {spec!r}"
        raise RecipeError(
            "recipe",
            "source.weights",
            f"{what} not on disk: looked for {path}. recipekit never downloads weights: put the file there, "
            "or build with architecture-only weights: `source.init=synthetic` (seeded weights, "
            "BatchNorm recalibrated on shipped sample images; the manifest says synthetic)",
        )
    return path, member


def _builder(name: str) -> Any:
    from torchvision.models import detection, get_model_builder, list_models

    if name not in list_models(module=detection):
        raise RecipeError(
            "recipe",
            "source.builder",
            f"unknown torchvision detection builder {name!r}; known: {', '.join(list_models(module=detection))}",
        )
    return get_model_builder(name)


def build(cfg: Any, recipe: Recipe) -> tuple[nn.Module, dict[str, Any]]:
    """The detector in eval mode, its resize pinned to the export size (see `pin_transform`),
    and notes for the manifest (where the weights came from)."""
    from recipekit.sources import checkpoint
    from recipekit.sources.synthetic import seeded

    kwargs = {k: v for k, v in cfg.model_kwargs().items() if v is not None}
    make = _builder(cfg.builder)
    if cfg.init == "synthetic":
        with seeded(cfg.seed):
            classes = cfg.num_classes or (2 if cfg.builder.startswith("keypointrcnn") else 91)
            model = make(weights=None, weights_backbone=None, num_classes=classes, **kwargs)
        from recipekit.sources.torchvision.synthetic import calibrate

        pin_transform(model, recipe.export.imgsz)
        from recipekit.sources.torchvision.families import family

        notes = calibrate(model, recipe, cfg.seed, family(cfg.builder))
        return model.eval(), {"weights": "synthetic", "synthetic": notes}
    path, member = resolve_weights(cfg.builder, cfg.weights, Path(recipe.base_dir or "."))
    classes = len(member.meta["categories"]) if member is not None else (cfg.num_classes or 91)
    model = make(weights=None, weights_backbone=None, num_classes=classes, **kwargs)
    state = checkpoint.load(path, "state", cfg.trust_code)  # read, never run; safetensors too
    _load_state(model, state.get("model", state) if isinstance(state, dict) else state, path)
    pin_transform(model, recipe.export.imgsz)
    return model.eval(), {"weights": str(path), "weights_name": member.name if member is not None else None}


def _load_state(model: nn.Module, state: dict, path: Path) -> None:
    """Strict loading, except BatchNorm's `num_batches_tracked` (absent in FrozenBatchNorm checkpoints)."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RecipeError(
            str(path),
            "source.weights",
            f"weights do not fit the architecture: missing {missing[:5]}, unexpected {list(unexpected)[:5]} (check "
            "source.builder and source.num_classes)",
        )


def pin_transform(model: nn.Module, imgsz: tuple[int, int]) -> None:
    """Make the detector's internal resize a no-op at the export size.

    GeneralizedRCNNTransform scales an image by min(min_size / short side, max_size / long side);
    with min_size = short side and max_size = long side of the export size that factor is 1, so the
    graph sees the recipe's preprocessed tensor as is. Other sizes are still resized inside the
    graph, and boxes come back in the input tensor's pixels either way.
    """
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    transform = getattr(model, "transform", None)
    if isinstance(transform, GeneralizedRCNNTransform) and transform.fixed_size is None:
        transform.min_size, transform.max_size = (min(imgsz),), max(imgsz)
