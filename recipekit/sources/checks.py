"""Plan-time checks every source shares: refuse at plan (exit 2) what would fail late in the build.

They run on every build, no-op ones included, so they read headers only and import nothing heavy
(no torch, no onnx): sizes against the model's stride, sample images that exist and are images,
weights files that are checkpoints asking for nothing outside their family, ONNX files that parse.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from recipekit.core.errors import RecipeError

if TYPE_CHECKING:
    from recipekit.recipe.schema import Recipe

IMAGE_MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"BM": "BMP",
    b"RIFF": "WebP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _near(value: int, multiple: int) -> str:
    low = max(multiple, value // multiple * multiple)
    return f"{low} or {low + multiple}" if low != value else str(value)


def sizes(recipe: Recipe, multiple: int) -> None:
    """export.imgsz and every input.shapes entry are multiples of the model's stride."""
    if multiple <= 1:
        return
    entries = [("export.imgsz", tuple(recipe.export.imgsz))]
    entries += [(f"input.shapes[{i}]", tuple(s)) for i, s in enumerate(recipe.input.shapes)]
    for key, hw in entries:
        bad = [v for v in hw if v % multiple]
        if bad:
            fixed = [v if v % multiple == 0 else int(_near(v, multiple).split()[0]) for v in hw]
            raise RecipeError(
                recipe.origin,
                key,
                f"{list(hw)}: {bad[0]} is not a multiple of {multiple}, the model's stride (its coarsest feature "
                f"map is the input divided by {multiple}); sizes that work near it: {_near(bad[0], multiple)} "
                f"(e.g. {list(fixed)})",
            )


def samples(recipe: Recipe) -> None:
    """Every input.samples entry names an existing image file (by its header, not its name)."""
    from recipekit.onnx.preprocess import resolve_sample

    for i, spec in enumerate(recipe.input.samples):
        try:
            path = resolve_sample(spec, Path(recipe.base_dir))
        except RecipeError as exc:
            raise RecipeError(recipe.origin, f"input.samples[{i}]", exc.msg) from None
        _image(recipe, f"input.samples[{i}]", path)


def _image(recipe: Recipe, key: str, path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise RecipeError(recipe.origin, key, f"cannot read {path}: {exc.strerror}") from None
    if not any(head.startswith(m) for m in IMAGE_MAGIC):
        kinds = ", ".join(sorted(set(IMAGE_MAGIC.values())))
        raise RecipeError(recipe.origin, key, f"{path} is not an image (expected {kinds})")


def checkpoints(files: list[Path], family: str, trust_code: bool) -> None:
    """Each weights file is a checkpoint (or safetensors) asking only for what `family` holds."""
    from recipekit.sources import checkpoint

    for path in files:
        checkpoint.check(path, family, trust_code)


# ---- ONNX files: the protobuf wire format of a ModelProto, walked without the onnx package ----

_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
"""ModelProto field number -> wire type (0 varint, 2 length-delimited), from onnx.proto."""


def onnx_problem(path: Path) -> str | None:
    """Why `path` is not an ONNX model (None: its top-level fields parse and it has a graph).

    Walks the ModelProto's top-level fields (seeking over their contents), so a large file costs a few
    reads; the onnx package is not imported (a no-op build imports neither it nor torch)."""
    from recipekit.onnx.header import varint

    size = path.stat().st_size
    seen: set[int] = set()
    with open(path, "rb") as fh:
        while fh.tell() < size:
            tag = varint(fh.read)
            if tag is None or (tag >> 3) not in _MODEL_FIELDS or _MODEL_FIELDS[tag >> 3] != (tag & 7):
                return f"not an ONNX model (unexpected bytes at offset {fh.tell()})"
            value = varint(fh.read)
            if value is None or (tag & 7 == 2 and fh.tell() + value > size):
                return f"not an ONNX model (truncated at offset {fh.tell()})"
            if tag & 7 == 2:
                fh.seek(value, 1)
            seen.add(tag >> 3)
    if 7 not in seen or 1 not in seen:
        return "not an ONNX model (no graph or no IR version)"
    return None


def onnx_file(recipe: Recipe, key: str, path: Path) -> None:
    why = onnx_problem(path)
    if why:
        raise RecipeError(recipe.origin, key, f"{path}: {why}")
