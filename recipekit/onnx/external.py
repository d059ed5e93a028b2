"""ONNX files whose weights live beside them (`model.onnx` + `model.onnx.data`, or several files).

The normal layout for big models (Optimum, torch's exporters). Every step that copies, loads or
saves a model goes through here, so the data files travel with the graph: hashed by the keys,
copied into each entry, shipped by the targets. A location that leaves the model's folder is
refused (a model file must not make recipekit read arbitrary files).
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

SUFFIX = ".data"


def _tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    from onnx.external_data_helper import _get_all_tensors

    return list(_get_all_tensors(model))


def locations(model: onnx.ModelProto) -> list[str]:
    """The external data files a model (loaded without its data) refers to, relative to its folder."""
    from onnx import TensorProto

    out: list[str] = []
    for t in _tensors(model):
        if t.data_location != TensorProto.EXTERNAL:
            continue
        loc = next((e.value for e in t.external_data if e.key == "location"), None)
        if loc is not None and loc not in out:
            out.append(loc)
    return out


def _check(loc: str, model_path: Path) -> str:
    from recipekit.core.errors import RecipeError

    pure = PurePosixPath(loc.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise RecipeError(str(model_path), "external_data.location", f"expected a file beside the model, got {loc!r}")
    return pure.as_posix()


def _may_have_external(model_path: Path) -> bool:
    """False when the file cannot refer to external data: every such tensor names a "location"
    key, so without those bytes onnx need not even be imported (a no-op build stays light)."""
    import mmap

    with open(model_path, "rb") as fh:
        if fh.seek(0, 2) == 0:
            return False
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return mm.find(b"location") >= 0


def data_files(model_path: Path) -> list[Path]:
    """The external data files of the ONNX file at `model_path` (none for a self-contained model)."""
    from recipekit.core.errors import RecipeError

    if not _may_have_external(model_path):
        return []
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    out = []
    for loc in locations(model):
        path = model_path.parent / _check(loc, model_path)
        if not path.is_file():
            raise RecipeError(str(model_path), "external_data.location", f"external data file not found: {path}")
        out.append(path)
    return out


def copy_model(src: Path, dest: Path) -> list[str]:
    """Copy an ONNX file and its external data files (same relative locations); returns their names."""
    shutil.copyfile(src, dest)
    names = []
    for data in data_files(src):
        rel = data.relative_to(src.parent)
        (dest.parent / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data, dest.parent / rel)
        names.append(rel.as_posix())
    return names


def has_external(model_path: Path) -> bool:
    return bool(data_files(model_path))


def save(model: onnx.ModelProto, path: Path, external: bool) -> list[str]:
    """Save `model` to `path`; with `external`, its weights go to `<name>.data` beside it.

    The caller's model is left as it was (onnx moves the data out of the proto it saves)."""
    import onnx

    if not external:
        onnx.save(model, str(path))
        return []
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    location = path.name + SUFFIX
    (path.parent / location).unlink(missing_ok=True)
    onnx.save(copy, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=location)
    return [location] if (path.parent / location).is_file() else []
