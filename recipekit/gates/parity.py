"""parity: the artifact against the PyTorch source on the golden cases, at every declared shape.

Raw tensors are compared element-wise (atol AND rtol); post-NMS outputs (output_kinds "detections")
are matched by IoU and class and compared in pixels, since row order and padding carry no meaning
(recipekit.onnx.compare's docstring gives the schema and the failure rule).
"""

from __future__ import annotations

from typing import ClassVar

from recipekit.gates.base import Gate, GateContext, GateResult
from recipekit.gates.tolerance import ToleranceConfig, decide, unknown_keys


class ParityConfig(ToleranceConfig):
    """Tolerances: a scalar or a per-output map whose "" key is the default."""


class Parity(Gate):
    """Runs every golden case through the artifact and compares each output with the source's."""

    name: ClassVar[str] = "parity"
    version: ClassVar[str] = "2"
    Config = ParityConfig

    def check(self, ctx: GateContext) -> GateResult:
        from recipekit.onnx.compare import compare_outputs

        golden = ctx.golden()
        bad_keys = unknown_keys(self.config, golden.output_names, ctx.output_kinds)
        if bad_keys:
            return GateResult("failed", failures=bad_keys, message="tolerance keys that name no output")
        runner, tol = ctx.runner(), self.config.tolerances()
        rows = []
        for case in golden.cases:
            got = runner.run_one(case.input)
            for row in compare_outputs(golden.output_names, case.outputs, got, ctx.output_kinds, tol):
                rows.append({"shape": list(case.shape), "sample": case.sample, **row})
        return decide(rows, where, figures={"runner": runner.description, "cases": len(golden.cases)})


def where(row: dict) -> str:
    """'640x1280 (bus.jpg)': the shape and sample of a comparison row."""
    return f"{row['shape'][0]}x{row['shape'][1]} ({row['sample']})"
