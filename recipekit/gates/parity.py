"""parity: the artifact against the PyTorch source on the golden cases, at every declared shape.

Every output is compared by its declared semantics (recipekit.recipe.outputs) with the one
comparison, recipekit.onnx.compare: raw heads per channel group in their own units, post-NMS
detections matched by IoU and class, prototype masks as mask IoU, dense maps and sequences per
element in their units, embeddings by cosine similarity, level heads decoded. Tolerances resolve as
the recipe's `gates.parity` option, then this gate's defaults (none), then the per-kind default;
an fp16 artifact adds the documented fp16 margin; on an INT8 artifact the gate is `not applicable`
(the accuracy gate judges it in task terms) unless the target configures it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from recipekit.gates.base import Gate, GateContext, GateResult
from recipekit.gates.tolerance import ToleranceConfig, decide, exercised, int8_deferred, layers, unknown_keys


class ParityConfig(ToleranceConfig):
    """Tolerances: a scalar or a per-output (per-field) map whose "" key is the default."""


class Parity(Gate):
    """Runs every golden case through the artifact and compares each output with the source's."""

    name: ClassVar[str] = "parity"
    version: ClassVar[str] = "8"
    Config = ParityConfig
    default_tolerances: ClassVar[dict[str, Any]] = {}

    @classmethod
    def not_applicable(cls, recipe: Any, target: str) -> str | None:
        return int8_deferred(recipe, target, cls.name)

    def check(self, ctx: GateContext) -> GateResult:
        from recipekit.onnx.compare import compare_outputs

        golden = ctx.golden()
        bad_keys = unknown_keys(self.config, golden.output_names, ctx.output_kinds)
        if bad_keys:
            return GateResult("failed", failures=bad_keys, message="tolerance keys that name no output")
        fp16 = ctx.recipe.export.precision == "fp16"  # the documented fp16 margin, as the browser gate adds it
        runner, tol = ctx.runner(), layers(self.config, self.default_tolerances, fp16=fp16)
        rows = []
        for case in golden.cases:
            got = runner.run_one(case.input)
            for row in compare_outputs(
                golden.output_names, case.outputs, got, ctx.output_kinds, tol, tuple(case.shape)
            ):
                rows.append({"shape": list(case.shape), "sample": case.sample, **row})
        figures = {"runner": runner.description, "cases": len(golden.cases), "tolerances": tol}
        return decide(rows, where, exercised(rows), figures)


def where(row: dict) -> str:
    """'640x1280 (bus.jpg)': the shape and sample of a comparison row."""
    return f"{row['shape'][0]}x{row['shape'][1]} ({row['sample']})"
