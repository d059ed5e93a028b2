"""The golden step: the source's reference outputs on the sample images, at every declared shape."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    from recipekit.onnx.golden import PROBES_VERSION
    from recipekit.onnx.pixels import VERSION as PIXELS_VERSION

    version = {
        "source": source.version,
        "fixes": fix_versions(step.config["source_fixes"]),
        "probes": PROBES_VERSION,
        "pixels": PIXELS_VERSION,  # the preprocessing arithmetic: another one makes other input tensors
    }
    return KeyParts(version, tools.versions(), {**weight_files(recipe), **sample_files(recipe)})


def _sample_inputs(ctx: StepContext, shape: tuple[int, int]) -> list[tuple[str, Any]]:
    from recipekit.onnx import preprocess

    inp = ctx.recipe.input
    if not inp.samples:
        return [
            (f"random-seed{i}", preprocess.random_tensor(shape, inp.preprocess, seed=i, dtype=inp.dtype))
            for i in range(2)
        ]
    return [
        (s, preprocess.image_tensor(ctx.files[f"samples/{s}"].path, shape, inp.preprocess, inp.dtype))
        for s in inp.samples
    ]


def run(ctx: StepContext) -> Output:
    from recipekit.graph.results import ExportResult, GoldenResult

    source = source_plugin(ctx.recipe)
    export = ctx.up("export")

    def build(work: Path) -> GoldenResult:
        import numpy as np

        from recipekit.onnx.golden import Case, Golden, probe_inputs

        exported: ExportResult = export.result  # type: ignore[assignment]
        patches, _ = source_patches(ctx)
        cases, probes, inp = [], [], ctx.recipe.input
        with source.reference(ctx.recipe, export.path, patches) as forward:
            for shape in ctx.recipe.shapes():
                for name, x in _sample_inputs(ctx, shape):
                    cases.append(Case(shape, name, x, [np.asarray(o) for o in forward(x)]))
            shape = ctx.recipe.shapes()[0]  # blank-ish inputs for empty-input, at the export size
            for name, x in probe_inputs(shape, inp.preprocess, inp.dtype):
                probes.append(Case(shape, name, x, [np.asarray(o) for o in forward(x)]))
        meta = {"output_kinds": exported.output_kinds, "init": exported.init}
        Golden(exported.outputs, cases, meta, probes).save(work)
        return GoldenResult(cases=len(cases), output_names=exported.outputs)

    return ctx.cached(build)
