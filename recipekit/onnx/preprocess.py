"""Images to input tensors, exactly as the recipe declares (resize, scale, mean, std, colour, layout).

Every gate and the golden step use this one definition (the arithmetic is `recipekit.onnx.pixels`,
which Jetson bundles ship beside check.py; the browser viewer's preprocess.js computes the same), so
feeding 0..255 to a model that wants 0..1 cannot happen through recipekit: the scale is part of the
recipe and manifest.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core.errors import RecipeError

if TYPE_CHECKING:
    import numpy as np

    from recipekit.recipe.schema import Preprocess


RGB01_NCHW = {"scale": 1 / 255, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "color": "rgb", "layout": "nchw"}
"""What most PyTorch vision models take: RGB pixels scaled to 0..1, NCHW, no mean/std applied outside."""


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
"""What a folder of images (calibration, a labelled set) is read for."""


def mismatch(pre: Preprocess, expected: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first (key, expected, declared) where the recipe's preprocessing differs, or None.

    Sources whose graph fixes its input convention use it to refuse any other declaration, so a
    recipe cannot feed the model 0..255 (or BGR) pixels, even consistently on both sides of a gate."""
    for key, want in expected.items():
        got = getattr(pre, key)
        if isinstance(want, float):
            same = abs(got - want) < 1e-9
        else:
            same = tuple(got) == want if isinstance(want, tuple) else got == want
        if not same:
            return key, want, got
    return None


def resolve_sample(spec: str, base_dir: Path, key: str = "input.samples") -> Path:
    """'ultralytics:bus.jpg' -> the file an installed package ships; else a path relative to the recipe."""
    local = (base_dir / spec).resolve()
    if local.is_file():
        return local
    pkg, sep, rel = spec.partition(":")
    if sep and pkg.isidentifier():
        found = importlib.util.find_spec(pkg)
        roots = list(found.submodule_search_locations or []) if found else []
        for root in roots:
            for cand in (Path(root) / rel, Path(root) / "assets" / rel):
                if cand.is_file():
                    return cand
        raise RecipeError(str(base_dir), key, f"no file {rel!r} in installed package {pkg!r}")
    what = "sample image" if key == "input.samples" else "file"
    raise RecipeError(str(base_dir), key, f"{what} not found: {spec} (looked at {local})")


def read_image(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 in BGR order."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise RecipeError(str(path), "input.samples", "not a readable image")
    return img


def resize(img: np.ndarray, hw: tuple[int, int], pre: Preprocess) -> tuple[np.ndarray, dict[str, Any]]:
    """The (H, W) canvas the model sees (recipekit.onnx.pixels.fit) and how to map model pixels back
    (ratio, pad; `inside`: the mask of image pixels, for `pad_tensor_value`)."""
    from recipekit.onnx import pixels

    try:
        canvas, inside, geo = pixels.fit(img, hw, pre.model_dump())
    except ValueError as exc:
        raise RecipeError("input.preprocess", "resize", str(exc)) from None
    return canvas, {"ratio": geo["ratio"], "pad": geo["pad"], "inside": inside}


def to_tensor(img_bgr: np.ndarray, pre: Preprocess, dtype: str = "float32", inside: Any = None) -> np.ndarray:
    """HxWx3 BGR uint8 (already sized) -> 1x3xHxW (or 1xHxWx3) normalised tensor (pixels.to_tensor)."""
    from recipekit.onnx import pixels

    return pixels.to_tensor(img_bgr, pre.model_dump(), inside, dtype)


def image_tensor(path: Path, hw: tuple[int, int], pre: Preprocess, dtype: str = "float32") -> np.ndarray:
    sized, info = resize(read_image(path), hw, pre)
    return to_tensor(sized, pre, dtype, info["inside"])


def blank_tensor(hw: tuple[int, int], pre: Preprocess, value: int = 0, dtype: str = "float32") -> np.ndarray:
    """A blank (uniform) image of `value`, preprocessed: the input that makes NMS keep nothing."""
    import numpy as np

    return to_tensor(np.full((*hw, 3), value, dtype=np.uint8), pre, dtype)


def random_tensor(hw: tuple[int, int], pre: Preprocess, seed: int, dtype: str = "float32") -> np.ndarray:
    """A seeded random image, preprocessed (used when a recipe names no samples)."""
    import numpy as np

    img = np.random.default_rng(seed).integers(0, 256, size=(*hw, 3), dtype=np.uint8)
    return to_tensor(img, pre, dtype)
