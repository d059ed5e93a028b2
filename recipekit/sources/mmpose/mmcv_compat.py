"""Lets mmdet / mmpose / mmdeploy import on mmcv-lite and on a setuptools without `pkg_resources`.

Why this exists:
- `mmcv-lite` is mmcv without its compiled C++/CUDA ops (full mmcv compiles for ~50 min here). Importing
  mmpose still reaches `mmcv.ops` (e.g. EDPose's MultiScaleDeformableAttention), whose modules call
  `ext_loader.load_ext("_ext", [...])` at import time and fail on the missing `mmcv._ext`. RTMO calls
  none of those ops, so a stand-in `mmcv._ext` whose every function raises a clear error is enough:
  the Python classes import, and any model that really needs a compiled op fails loudly when run.
  The one exception is `nms`, which mmdeploy runs while tracing its NMS: torchvision provides it.
- setuptools 81+ no longer ships `pkg_resources`, which mmengine (`get_installed_path`, used when
  mmpose's inferencers and mmengine's config resolve package paths) and mmdeploy import lazily. A
  fallback `pkg_resources` built on `importlib.metadata` provides the three names they use. It sits
  last on `sys.meta_path`, so a real `pkg_resources` always wins.
- Nothing is written to the user's home: mmengine imports yapf, which pickles its grammar into
  ~/.cache/YAPF on import, and matplotlib, which keeps a font cache in ~/.config or ~/.cache. yapf's
  grammar is loaded once under a temporary cache folder; matplotlib gets a temporary MPLCONFIGDIR
  unless one is set (as the Ultralytics source does for YOLO_CONFIG_DIR).
`install()` is idempotent and changes nothing when full mmcv / setuptools' pkg_resources are present.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import sys
import types
from typing import Any

MISSING_OP = (
    "mmcv compiled op {!r} is not available: mmcv-lite has no compiled ops "
    "(install full mmcv for models that need them)"
)


def _nms(bboxes: Any, scores: Any, iou_threshold: float, offset: int = 0) -> Any:
    """mmcv's compiled `nms` (indices, highest score first) via torchvision, for offset 0.

    mmdeploy's ONNXNMSop runs mmcv's nms while tracing (its symbolic emits onnx::NonMaxSuppression),
    so exporting RTMO needs this one op; torchvision's kernel has the same contract for offset 0.
    """
    import torchvision

    if offset != 0:
        raise RuntimeError(MISSING_OP.format("nms with offset=1"))
    return torchvision.ops.nms(bboxes, scores, float(iou_threshold))


class _MissingOps(types.ModuleType):
    """`mmcv._ext` stand-in: `nms` works (torchvision); any other op raises when called."""

    nms = staticmethod(_nms)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def missing(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError(MISSING_OP.format(name))

        missing.__name__ = name
        return missing


class DistributionNotFound(Exception):  # noqa: N818 - pkg_resources' name
    """pkg_resources.DistributionNotFound."""


class _Distribution:
    """The part of pkg_resources.Distribution that mmengine / mmdeploy read."""

    def __init__(self, name: str) -> None:
        try:
            self._dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise DistributionNotFound(name) from None
        self.project_name = name
        self.version = self._dist.version
        self.location = str(self._dist.locate_file(""))

    def has_metadata(self, name: str) -> bool:
        return self._dist.read_text(name) is not None

    def get_metadata(self, name: str) -> str:
        return self._dist.read_text(name) or ""


class _PkgResourcesFallback(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `pkg_resources` only when nothing before it on sys.meta_path does (reload-safe)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname == "pkg_resources" else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        module.DistributionNotFound = DistributionNotFound  # type: ignore[attr-defined]
        module.get_distribution = _Distribution  # type: ignore[attr-defined]
        module.__doc__ = "recipekit's importlib.metadata fallback for the pkg_resources names mmengine uses"


def _has_real_ext() -> bool:
    try:
        return importlib.util.find_spec("mmcv._ext") is not None
    except (ImportError, ValueError):
        return False


def _no_home_caches() -> None:
    """Load yapf's grammar with its cache in a temporary folder; default MPLCONFIGDIR to one."""
    import os
    import tempfile

    if "matplotlib" not in sys.modules and "MPLCONFIGDIR" not in os.environ:
        from recipekit.core.lifetime import make_tempdir, remove_at_exit

        mpl = make_tempdir("mpl")  # removed at exit, or by the next build's sweep if this one is killed
        remove_at_exit(mpl)
        os.environ["MPLCONFIGDIR"] = str(mpl)
    if "yapf_third_party._ylib2to3.pygram" in sys.modules:
        return
    saved = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory(prefix="recipekit-yapf-") as tmp:
        os.environ["XDG_CACHE_HOME"] = tmp
        try:
            importlib.import_module("yapf")
        except ImportError:
            pass
        finally:
            if saved is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = saved


def install() -> None:
    """Make `mmcv.ops` and `pkg_resources` importable; a no-op where the real ones exist."""
    _no_home_caches()
    if "mmcv._ext" not in sys.modules and not _has_real_ext():
        stub = _MissingOps("mmcv._ext")
        # A spec without a loader: mmengine's `mmcv_full_available()` (pkgutil.find_loader) then
        # answers False, which is the truth, instead of raising on a spec-less module.
        stub.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)
        sys.modules["mmcv._ext"] = stub
    if not any(isinstance(f, _PkgResourcesFallback) for f in sys.meta_path):
        sys.meta_path.append(_PkgResourcesFallback())
