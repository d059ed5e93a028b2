"""onnx: bring your own ONNX file. It is copied as the export; the fixes and targets apply as usual.

Nothing can be re-exported, so export options that would need a re-export are refused with what to
do instead (the opset fix, or matching the file; precision is export.precision). The reference for the gates is the
original file run in ONNX Runtime on the CPU: parity then shows that the fixes and the target kept
the file's outputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from recipekit.core.errors import RecipeError
from recipekit.recipe.outputs import OutputKind, declare
from recipekit.sources.base import ExportInfo, Forward, Source, SourceConfig

if TYPE_CHECKING:
    import onnx

    from recipekit.recipe.schema import Recipe


class OnnxFileConfig(SourceConfig):
    kind: Literal["onnx"] = "onnx"
    path: str = Field(description="the ONNX file, relative to the recipe")
    output_kinds: dict[str, OutputKind] = Field(
        default_factory=dict,
        description="what each output's elements are (recipekit.recipe.outputs), e.g. {output0: {kind: raw_head, "
        "groups: [{role: box, start: 0, stop: 4, format: cxcywh}, {role: class_scores, start: 4, stop: "
        "84}]}}; undeclared outputs are tensors",
    )


def _dims(value: Any) -> list[Any]:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in value.type.tensor_type.shape.dim]


def refusals(model: onnx.ModelProto, recipe: Recipe) -> list[tuple[str, str]]:
    """(key path, why) for every export option the file contradicts."""
    ex, out = recipe.export, []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset != ex.opset:
        out.append(
            (
                "export.opset",
                f"the file has opset {opset}; set export.opset: {opset}, and add the `opset` fix to convert",
            )
        )
    inits = {i.name for i in model.graph.initializer}
    dims = _dims(next(i for i in model.graph.input if i.name not in inits))
    if len(dims) == 4 and all(isinstance(d, int) for d in dims[2:]) and tuple(dims[2:]) != tuple(ex.imgsz):
        out.append(
            ("export.imgsz", f"the file's input is {dims[2]}x{dims[3]}; set export.imgsz: [{dims[2]}, {dims[3]}]")
        )
    if dims and isinstance(dims[0], int) and ex.dynamic_batch:
        out.append(("export.batch", f"the file has a static batch of {dims[0]}; a dynamic batch needs a re-export"))
    if ex.nms is not None:
        out.append(("export.nms", "NMS cannot be embedded into an existing ONNX file; remove export.nms"))
    if ex.simplify:
        out.append(("export.simplify", "use the `onnxslim` fix on an existing ONNX file instead of export.simplify"))
    return out


class OnnxFileSource(Source):
    name: ClassVar[str] = "onnx"
    version: ClassVar[str] = "2"
    reference_name: ClassVar[str] = "the source ONNX (ONNX Runtime CPU)"
    reads_samples: ClassVar[bool] = False
    Config = OnnxFileConfig
    init = "weights"

    def weight_files(self, base: Path) -> list[Path]:
        path = (base / self.config.path).resolve()
        if not path.is_file():
            raise RecipeError(str(base), "source.path", f"ONNX file not found: {path}")
        from recipekit.onnx.external import data_files

        return [path, *data_files(path)]  # weights kept beside the graph (model.onnx.data) are part of the model

    def check_recipe(self, recipe: Recipe) -> None:
        """Plan time: the file is an ONNX model (its protobuf fields walked, onnx not imported)."""
        from recipekit.sources import checks

        super().check_recipe(recipe)
        path = self.weight_files(Path(recipe.base_dir))[0]
        checks.onnx_file(recipe, "source.path", path)
        from recipekit.onnx.header import output_dims
        from recipekit.recipe.outputs import check_declared

        check_declared(recipe, "source.output_kinds", dict(self.config.output_kinds), output_dims(path))

    def export(self, recipe: Recipe, out: Path, patches: list[Any]) -> ExportInfo:
        import onnx

        src = self.weight_files(Path(recipe.base_dir))[0]
        model = onnx.load(str(src), load_external_data=False)
        problems = refusals(model, recipe)
        if problems:
            key, why = problems[0]
            raise RecipeError(recipe.origin, key, why + "".join(f"; also {k}: {w}" for k, w in problems[1:]))
        if patches:
            raise RecipeError(recipe.origin, "fixes", "source fixes need a model to patch; an ONNX file has none")
        from recipekit.onnx.external import copy_model

        copy_model(src, out / "model.onnx")
        inits = {i.name for i in model.graph.initializer}
        outputs = [o.name for o in model.graph.output]
        try:
            kinds = declare(dict(self.config.output_kinds), outputs)
        except ValueError as exc:
            raise RecipeError(recipe.origin, "source.output_kinds", " ".join(str(exc).split())) from None
        return ExportInfo(
            [i.name for i in model.graph.input if i.name not in inits], outputs, kinds, {"file": src.name}
        )

    @contextmanager
    def reference(self, recipe: Recipe, export_dir: Path, patches: list[Any]) -> Iterator[Forward]:
        from recipekit.onnx.runtime import OrtRunner

        runner = OrtRunner(export_dir / "model.onnx")
        yield runner.run_one
