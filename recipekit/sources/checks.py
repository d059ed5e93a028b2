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
    from recipekit.onnx.wire import Header
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


def preprocess(recipe: Recipe) -> None:
    """Image-sized modes against the declared shapes: `multiple` feeds each image at its own size
    (a dynamic H/W graph, sides multiples of N); `fixed-height` buckets share the export height."""
    pre, shapes = recipe.input.preprocess, recipe.shapes()
    keys = ["export.imgsz"] + [f"input.shapes[{i}]" for i in range(len(recipe.input.shapes))]
    if pre.resize == "multiple":
        if not recipe.export.dynamic.hw:
            raise RecipeError(
                recipe.origin,
                "export.dynamic.hw",
                "resize: multiple feeds every image at its own size; set export.dynamic.hw: true",
            )
        for key, hw in zip(keys, [tuple(recipe.export.imgsz), *map(tuple, recipe.input.shapes)], strict=True):
            if hw[0] % pre.multiple or hw[1] % pre.multiple:
                raise RecipeError(recipe.origin, key, f"{list(hw)}: resize: multiple needs multiples of {pre.multiple}")
    if pre.resize == "fixed-height":
        for i, hw in enumerate(recipe.input.shapes):
            if hw[0] != shapes[0][0]:
                raise RecipeError(
                    recipe.origin,
                    f"input.shapes[{i}]",
                    f"{list(hw)}: resize: fixed-height buckets share the export height {shapes[0][0]}",
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


def onnx_file(recipe: Recipe, key: str, path: Path) -> Header:
    """The ONNX file's header (opsets, inputs, outputs), read without the onnx package; exit 2 when
    the file is not an ONNX model."""
    from recipekit.onnx.wire import NotOnnx, read_header

    try:
        return read_header(path)
    except NotOnnx as exc:
        raise RecipeError(recipe.origin, key, f"{path}: {exc}") from None
    except OSError as exc:
        raise RecipeError(recipe.origin, key, f"cannot read {path}: {exc.strerror}") from None
