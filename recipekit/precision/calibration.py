"""Calibration images: `input.calibration` (a folder or a glob, relative to the recipe), default the samples.

Their digests go into the precision step's key: another image set is another INT8 model.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core.errors import RecipeError
from recipekit.onnx.preprocess import IMAGE_SUFFIXES

if TYPE_CHECKING:
    import numpy as np

    from recipekit.recipe.schema import Recipe

KEY = "input.calibration"


def _expand(spec: str, base: Path, origin: str) -> list[Path]:
    """A folder (its images, sorted), a glob (sorted matches), a file, or a `package:file` sample."""
    from recipekit.onnx.preprocess import resolve_sample

    path = (base / spec).expanduser()
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if _image(p))
        if not found:
            raise RecipeError(origin, KEY, f"folder {path} holds no image ({', '.join(IMAGE_SUFFIXES)})")
        return found
    if glob.has_magic(spec):
        found = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if _image(Path(p)))
        if not found:
            raise RecipeError(origin, KEY, f"glob {spec!r} (from {base}) matches no image file")
        return found
    try:
        found = resolve_sample(spec, base)
    except RecipeError:
        raise RecipeError(origin, KEY, f"expected a folder, a glob or an image file, got {spec!r}") from None
    if not _image(found):
        raise RecipeError(origin, KEY, f"{found} is not an image file ({', '.join(IMAGE_SUFFIXES)})")
    return [found]


def _image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def calibration_images(recipe: Recipe) -> list[Path]:
    """The calibration images in a stable order; the samples when `input.calibration` is not set."""
    from recipekit.onnx.preprocess import resolve_sample

    base, origin = Path(recipe.base_dir or "."), recipe.origin or recipe.name
    specs = recipe.input.calibration
    if specs is None:
        if not recipe.input.samples:
            raise RecipeError(origin, KEY, "int8 needs calibration images: set input.calibration or input.samples")
        return [resolve_sample(s, base) for s in recipe.input.samples]
    out: list[Path] = []
    for spec in [specs] if isinstance(specs, str) else specs:
        out += [p for p in _expand(spec, base, origin) if p not in out]
    return out


def calibration_tensors(recipe: Recipe, images: list[Path]) -> list[np.ndarray]:
    """Each image preprocessed as the recipe declares, at the export size, batch 1."""
    from recipekit.onnx.preprocess import image_tensor

    pre, hw = recipe.input.preprocess, tuple(recipe.export.imgsz)
    return [image_tensor(p, hw, pre, recipe.input.dtype) for p in images]


def evaluation_tensors(recipe: Recipe, images: list[Path]) -> list[np.ndarray]:
    """Each image at every declared shape (the export size, then input.shapes): where the precision
    step scores candidates, as the accuracy gate judges the samples at every shape."""
    from recipekit.onnx.preprocess import image_tensor

    pre = recipe.input.preprocess
    return [image_tensor(p, hw, pre, recipe.input.dtype) for hw in recipe.shapes() for p in images]


def reader(input_name: str, tensors: list[np.ndarray]) -> Any:
    """An onnxruntime.quantization CalibrationDataReader over `tensors`."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(tensors)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._it, None)
            return None if x is None else {input_name: x}

        def rewind(self) -> None:
            self._it = iter(tensors)

    return _Reader()
