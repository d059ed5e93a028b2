"""Images to input tensors, exactly as the recipe declares (resize, scale, mean, std, colour, layout).

Every gate, the golden step and the browser page use this one definition, so feeding 0..255 to a
model that wants 0..1 cannot happen through recipekit: the scale is part of the recipe and manifest.
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


def resolve_sample(spec: str, base_dir: Path) -> Path:
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
        raise RecipeError(str(base_dir), "input.samples", f"no file {rel!r} in installed package {pkg!r}")
    raise RecipeError(str(base_dir), "input.samples", f"sample image not found: {spec} (looked at {local})")


def read_image(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 in BGR order."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise RecipeError(str(path), "input.samples", "not a readable image")
    return img


def resize(img: np.ndarray, hw: tuple[int, int], pre: Preprocess) -> tuple[np.ndarray, dict[str, Any]]:
    """Resize as declared; returns the image and how to map model pixels back (ratio, pad)."""
    import cv2
    import numpy as np

    h, w = hw
    ih, iw = img.shape[:2]
    if pre.resize == "none":
        if (ih, iw) != (h, w):
            raise RecipeError("input.preprocess", "resize", f"resize: none needs {h}x{w} images, got {ih}x{iw}")
        return img, {"ratio": [1.0, 1.0], "pad": [0.0, 0.0]}
    if pre.resize == "stretch":
        out = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        return out, {"ratio": [w / iw, h / ih], "pad": [0.0, 0.0]}
    if pre.resize == "center-crop":
        return center_crop(img, hw)
    r = min(h / ih, w / iw)
    nw, nh = round(iw * r), round(ih * r)
    px, py = (w - nw) / 2, (h - nh) / 2
    out = np.full((h, w, 3), pre.pad_value, dtype=np.uint8)
    top, left = round(py - 0.1), round(px - 0.1)
    out[top : top + nh, left : left + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out, {"ratio": [r, r], "pad": [left, top]}


def center_crop(img: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, dict[str, Any]]:
    """torchvision's Resize + CenterCrop on a PIL image (Ultralytics' classify_transforms, square sizes).

    The side that limits covering (H, W) is resized to its target, the other to int(target * long /
    short) as torchvision computes it, with PIL's bilinear filter (antialiased when shrinking); then
    the centre (H, W) is cut out at int(round(excess / 2)). "pad" is negative: the crop's offset."""
    import numpy as np
    from PIL import Image

    h, w = hw
    ih, iw = img.shape[:2]
    if h / ih >= w / iw:
        nh, nw = h, int(h * iw / ih)
    else:
        nh, nw = int(w * ih / iw), w
    nh, nw = max(nh, h), max(nw, w)
    sized = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((nw, nh), Image.BILINEAR))
    top, left = int(round((nh - h) / 2.0)), int(round((nw - w) / 2.0))
    out = np.ascontiguousarray(sized[top : top + h, left : left + w])
    return out, {"ratio": [nw / iw, nh / ih], "pad": [-left, -top]}


def to_tensor(img_bgr: np.ndarray, pre: Preprocess, dtype: str = "float32") -> np.ndarray:
    """HxWx3 BGR uint8 (already sized) -> 1x3xHxW (or 1xHxWx3) normalised tensor."""
    import numpy as np

    img = img_bgr[..., ::-1] if pre.color == "rgb" else img_bgr
    x = img.astype(np.float32) * np.float32(pre.scale)
    x = (x - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
    x = x.transpose(2, 0, 1) if pre.layout == "nchw" else x
    return np.ascontiguousarray(x[None]).astype(dtype)


def image_tensor(path: Path, hw: tuple[int, int], pre: Preprocess, dtype: str = "float32") -> np.ndarray:
    sized, _ = resize(read_image(path), hw, pre)
    return to_tensor(sized, pre, dtype)


def blank_tensor(hw: tuple[int, int], pre: Preprocess, value: int = 0, dtype: str = "float32") -> np.ndarray:
    """A blank (uniform) image of `value`, preprocessed: the input that makes NMS keep nothing."""
    import numpy as np

    return to_tensor(np.full((*hw, 3), value, dtype=np.uint8), pre, dtype)


def random_tensor(hw: tuple[int, int], pre: Preprocess, seed: int, dtype: str = "float32") -> np.ndarray:
    """A seeded random image, preprocessed (used when a recipe names no samples)."""
    import numpy as np

    img = np.random.default_rng(seed).integers(0, 256, size=(*hw, 3), dtype=np.uint8)
    return to_tensor(img, pre, dtype)
