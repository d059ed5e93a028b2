"""Image pixels to a model's input tensor: every preprocessing mode, defined once for Python, in numpy.

The gates use it through `recipekit.onnx.preprocess`; Jetson bundles ship this file beside check.py
(so it imports nothing from recipekit, only numpy, and runs on Python 3.8: JetPack 5); the browser
viewer's `preprocess.js` computes the same steps in the same order, so the three agree to the bit
(tests/onnx/test_preprocess_runtimes.py runs all three). `pre` is the recipe's `input.preprocess`
as a plain dict (what manifests carry).

A mode maps an image onto an (H, W) canvas: `geometry` says where the resized image lands (an
offset, negative for a crop) and which resampler makes it; padding takes `pad_value` (or, after
normalisation, `pad_tensor_value`). Two resamplers, written out so that no library's rounding
decides a pixel:
- `linear`: bilinear with half-pixel centres, edge-clamped, 11-bit fixed-point weights and integer
  arithmetic (OpenCV's INTER_LINEAR; cv2.resize's SIMD rounding differs by at most one level);
- `pil`: Pillow's Image.resize(BILINEAR) on 8-bit images (a triangle filter widened when shrinking,
  22-bit fixed-point coefficients, horizontal then vertical pass), what torchvision's Resize on a PIL
  image and Ultralytics' classify_transforms compute.
Image-dependent sizes (`multiple`, `fixed-height`) are picked by `deployed_size`: the size a
deployment feeds for that image (a dynamic-H/W model), from the export size or the declared shapes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

VERSION = "1"
"""Of the arithmetic below: part of the golden step's key (another version makes other input tensors)."""
PRECISION_BITS = 22  # Pillow's Resample.c


def round_half_even(x: float) -> int:
    """Python's round(): what Ultralytics and PaddleOCR round sizes with (preprocess.js has the same)."""
    return int(round(x))


def geometry(ih: int, iw: int, hw: Sequence[int], pre: dict[str, Any]) -> dict[str, Any]:
    """Where an (ih, iw) image goes on the (H, W) canvas: resized size, offset (top, left; negative:
    cropped), resampler, and the mapping back to image pixels (ratio, pad) detections are drawn with."""
    h, w = int(hw[0]), int(hw[1])
    mode = pre.get("resize", "letterbox")
    if mode == "none":
        if (ih, iw) != (h, w):
            raise ValueError(f"resize: none needs {h}x{w} images, got {ih}x{iw}")
        return _placed((h, w), (0, 0), "linear", [1.0, 1.0], [0.0, 0.0])
    if mode in ("stretch", "multiple"):
        return _placed((h, w), (0, 0), "linear", [w / iw, h / ih], [0.0, 0.0])
    if mode == "letterbox":
        r = min(h / ih, w / iw)
        nh, nw = round_half_even(ih * r), round_half_even(iw * r)
        top, left = 0, 0
        if pre.get("pad", "center") == "center":
            top, left = round_half_even((h - nh) / 2 - 0.1), round_half_even((w - nw) / 2 - 0.1)
        return _placed((nh, nw), (top, left), "linear", [r, r], [float(left), float(top)])
    if mode == "fixed-height":
        nw = max(1, min(w, int(math.ceil(h * (iw / ih)))))
        return _placed((h, nw), (0, 0), "linear", [nw / iw, h / ih], [0.0, 0.0])
    if mode == "center-crop":
        return _center_crop(ih, iw, h, w, float(pre.get("crop_fraction", 1.0)))
    raise ValueError(f"unknown resize mode {mode!r}")


def _placed(size: tuple[int, int], offset: tuple[int, int], how: str, ratio: list[float], pad: list[float]) -> dict:
    return {"size": size, "offset": offset, "resampler": how, "ratio": ratio, "pad": pad}


def _center_crop(ih: int, iw: int, h: int, w: int, fraction: float) -> dict[str, Any]:
    """torchvision's Resize + CenterCrop: the image resized to cover (H, W) / crop_fraction (the
    limiting side to its target, the other to int(target * long / short)), the centre (H, W) cut out."""
    ch, cw = int(math.floor(h / fraction)), int(math.floor(w / fraction))
    if ch / ih >= cw / iw:
        nh, nw = ch, int(ch * iw / ih)
    else:
        nh, nw = int(cw * ih / iw), cw
    nh, nw = max(nh, ch), max(nw, cw)
    top, left = round_half_even((nh - h) / 2.0), round_half_even((nw - w) / 2.0)
    return _placed((nh, nw), (-top, -left), "pil", [nw / iw, nh / ih], [float(-left), float(-top)])


def deployed_size(ih: int, iw: int, pre: dict[str, Any], shapes: Sequence[Sequence[int]]) -> tuple[int, int]:
    """The (H, W) a deployment feeds for an (ih, iw) image; `shapes` are the recipe's (export size first).

    multiple: the image fitted into the export size keeping its aspect, each side rounded to a
    multiple of N (PaddleOCR's text-detector resize); fixed-height: the narrowest declared width at
    the export height that holds the resized line (the widest if none does); else the export size."""
    h, w = int(shapes[0][0]), int(shapes[0][1])
    mode = pre.get("resize", "letterbox")
    if mode == "multiple":
        n = int(pre.get("multiple", 32))
        r = min(h / ih, w / iw)
        nh, nw = int(ih * r), int(iw * r)
        return max(n, round_half_even(nh / n) * n), max(n, round_half_even(nw / n) * n)
    if mode == "fixed-height":
        need = int(math.ceil(h * (iw / ih)))
        widths = sorted({int(s[1]) for s in shapes if int(s[0]) == h})
        return h, next((x for x in widths if x >= need), widths[-1])
    return h, w


COEF_BITS = 11  # bilinear weights in fixed point, as OpenCV's INTER_LINEAR keeps them


def linear(src: np.ndarray, dh: int, dw: int) -> np.ndarray:
    """Bilinear resize of an HxWxC uint8 image to (dh, dw): half-pixel centres, edges clamped, weights
    in 11-bit fixed point (w1 = floor(f * 2048 + 0.5), w0 = 2048 - w1), integer arithmetic:
    out = (row0 * wy0 + row1 * wy1 + 2^21) >> 22 with row = a * wx0 + b * wx1. OpenCV's scalar
    INTER_LINEAR path computes the same; its SIMD lanes round differently (at most one level)."""
    import numpy as np

    sh, sw = src.shape[:2]
    iy, wy = _taps(sh, dh)
    ix, wx = _taps(sw, dw)
    iy1, ix1 = np.minimum(iy + 1, sh - 1), np.minimum(ix + 1, sw - 1)
    used, where = np.unique(np.concatenate([iy, iy1]), return_inverse=True)
    rows = src[used]  # each source row blended once, in place: a * 2048 + (b - a) * w is a * (2048 - w) + b * w
    left = np.take(rows, ix, axis=1).astype(np.int32)
    right = np.take(rows, ix1, axis=1).astype(np.int32)
    right -= left
    right *= wx[None, :, None]
    left <<= COEF_BITS
    left += right
    top, bottom = left[where[:dh]], left[where[dh:]]
    bottom -= top
    bottom *= wy[:, None, None]
    top <<= COEF_BITS
    top += bottom + (1 << (2 * COEF_BITS - 1))
    return (top >> (2 * COEF_BITS)).astype(np.uint8)


def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output index: the first source index and the second one's weight (0..2048)."""
    import numpy as np

    f = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    i = np.floor(f)
    f = f - i
    i = i.astype(np.int64)
    low, high = i < 0, i >= n_in - 1
    i[low], f[low] = 0, 0.0
    i[high], f[high] = n_in - 1, 0.0
    return i, np.floor(f * (1 << COEF_BITS) + 0.5).astype(np.int32)


def _pil_coefficients(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter: per output
    index its first input index, tap count and fixed-point weights."""
    import numpy as np

    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support, ss = filterscale, 1.0 / filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    first = np.zeros(n_out, np.int64)
    count = np.zeros(n_out, np.int64)
    kk = np.zeros((n_out, ksize), np.int64)
    for xx in range(n_out):
        center = (xx + 0.5) * scale
        xmin = max(0, int(center - support + 0.5))
        n = min(n_in, int(center + support + 0.5)) - xmin
        k = [_triangle((x + xmin - center + 0.5) * ss) for x in range(n)]
        ww = sum(k)
        for x in range(n):
            v = k[x] / ww if ww != 0.0 else k[x]
            kk[xx, x] = int(-0.5 + v * (1 << PRECISION_BITS)) if v < 0 else int(0.5 + v * (1 << PRECISION_BITS))
        first[xx], count[xx] = xmin, n
    return first, count, kk


def _triangle(x: float) -> float:
    x = -x if x < 0.0 else x
    return 1.0 - x if x < 1.0 else 0.0


def _pil_pass(src: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    import numpy as np

    first, count, kk = _pil_coefficients(src.shape[axis], n_out)
    # int32 sums, as Resample.c's `int ss`
    acc = np.full(src.shape[:axis] + (n_out,) + src.shape[axis + 1 :], 1 << (PRECISION_BITS - 1), np.int32)
    for t in range(kk.shape[1]):
        idx = np.minimum(first + t, src.shape[axis] - 1)
        weight = np.where(t < count, kk[:, t], 0).astype(np.int32)
        taken = np.take(src, idx, axis=axis).astype(np.int32)
        taken *= weight[:, None, None] if axis == 0 else weight[None, :, None]
        acc += taken
    return np.clip(acc >> PRECISION_BITS, 0, 255).astype(np.uint8)


def pil(src: np.ndarray, dh: int, dw: int) -> np.ndarray:
    """Pillow's Image.resize((dw, dh), BILINEAR) on an HxWxC uint8 image: width pass, then height."""
    return _pil_pass(_pil_pass(src, dw, 1), dh, 0)


def fit(img: np.ndarray, hw: Sequence[int], pre: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, dict]:
    """The (H, W, 3) uint8 canvas the model sees, the mask of image pixels on it (False: padding),
    and the geometry (ratio, pad: how model pixels map back to the image)."""
    import numpy as np

    h, w = int(hw[0]), int(hw[1])
    geo = geometry(img.shape[0], img.shape[1], (h, w), pre)
    (rh, rw), (top, left) = geo["size"], geo["offset"]
    sized = img if (rh, rw) == img.shape[:2] else (pil if geo["resampler"] == "pil" else linear)(img, rh, rw)
    canvas = np.full((h, w, 3), int(pre.get("pad_value", 114)), np.uint8)
    inside = np.zeros((h, w), bool)
    y0, x0 = max(top, 0), max(left, 0)
    part = sized[y0 - top : y0 - top + h - y0, x0 - left : x0 - left + w - x0]
    canvas[y0 : y0 + part.shape[0], x0 : x0 + part.shape[1]] = part
    inside[y0 : y0 + part.shape[0], x0 : x0 + part.shape[1]] = True
    return canvas, inside, geo


def to_tensor(img_bgr: np.ndarray, pre: dict[str, Any], inside: np.ndarray | None = None, dtype: str = "float32"):
    """HxWx3 BGR uint8 (already sized) -> 1x3xHxW (or 1xHxWx3): colour order, scale, mean, std in
    float64, rounded to float32 once (as preprocess.js does); padding set to `pad_tensor_value` if given."""
    import numpy as np

    img = img_bgr[..., ::-1] if pre.get("color", "rgb") == "rgb" else img_bgr
    mean = np.asarray(pre.get("mean", (0.0, 0.0, 0.0)), np.float64)
    std = np.asarray(pre.get("std", (1.0, 1.0, 1.0)), np.float64)
    x = ((img.astype(np.float64) * float(pre.get("scale", 1 / 255)) - mean) / std).astype(np.float32)
    fill = pre.get("pad_tensor_value")
    if fill is not None and inside is not None:
        x[~inside] = np.float32(fill)
    x = x.transpose(2, 0, 1) if pre.get("layout", "nchw") == "nchw" else x
    return np.ascontiguousarray(x[None]).astype(dtype)


def tensor(img_bgr: np.ndarray, hw: Sequence[int], pre: dict[str, Any], dtype: str = "float32"):
    """An image (HxWx3 BGR uint8, any size) preprocessed at (H, W): the tensor and its geometry."""
    canvas, inside, geo = fit(img_bgr, hw, pre)
    return to_tensor(canvas, pre, inside, dtype), geo
