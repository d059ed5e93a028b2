"""The export step: the source plugin writes model.onnx (and any external data files)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from recipekit.core import tools
from recipekit.graph.stages.common import (
    KeyParts,
    fix_versions,
    sample_files,
    source_patches,
    source_plugin,
    weight_files,
)

if TYPE_CHECKING:
    from recipekit.graph.context import Output, StepContext
    from recipekit.graph.plan import Step
    from recipekit.recipe.schema import Recipe


def key_parts(step: Step, recipe: Recipe) -> KeyParts:
    source = source_plugin(recipe)
    files = weight_files(recipe)
    if getattr(source, "reads_samples", True):  # e.g. synthetic weights recalibrated on the samples
        files.update(sample_files(recipe))
    version = {"source": source.version, "fixes": fix_versions(step.config["source_fixes"])}
    return KeyParts(version, tools.versions(), files)


def run(ctx: StepContext) -> Output:
    from recipekit.graph.results import ExportResult

    source = source_plugin(ctx.recipe)

    def build(work: Path) -> ExportResult:
        from recipekit.onnx.util import concretize_file

        patches, records = source_patches(ctx)
        info = source.export(ctx.recipe, work, patches)
        concrete = concretize_file(work / "model.onnx")  # e.g. Concatoutput0_dim_1 -> 84 under a dynamic batch
        if concrete:
            info.notes["concretized_output_dims"] = concrete
        _check_kinds(ctx.recipe, info.output_kinds, work / "model.onnx")
        return ExportResult(
            inputs=info.inputs,
            outputs=info.outputs,
            output_kinds=info.output_kinds,
            notes=info.notes,
            init=source.init,
            source_fixes=records,
        )

    return ctx.cached(build)


def _check_kinds(recipe: Recipe, kinds: dict, model: Path) -> None:
    """Each output's declared kind fits its rank and shape (a source whose outputs exist only once
    exported, e.g. `python`; an `onnx` source is checked at plan). A misfit: one line naming the key."""
    from recipekit.onnx.wire import output_dims
    from recipekit.recipe.outputs import check_declared

    check_declared(recipe, "source.output_kinds", kinds, output_dims(model))
