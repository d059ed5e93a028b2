"""Versions of the tools that shape artifacts, read from package metadata (no imports, so no torch)."""

from __future__ import annotations

import sys
from functools import cache
from importlib import metadata

SHAPING = (
    "torch",
    "torchvision",
    "onnx",
    "onnxruntime",
    "onnxslim",
    "onnx-ir",
    "ultralytics",
    "numpy",
    "opencv-python",
    "mmpose",
    "mmdeploy",
    "mmcv-lite",
    "mmengine",
    "mmdet",
)


@cache
def version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions(names: tuple[str, ...] = SHAPING) -> dict[str, str | None]:
    """name -> installed version (None when not installed), plus python and recipekit."""
    from recipekit import __version__

    out = {n: version(n) for n in names}
    out["python"] = ".".join(map(str, sys.version_info[:3]))
    out["recipekit"] = __version__
    return out
