"""latency: how long the artifact takes per batch size, measured on the target's runner.

A measurement, not a check of correctness: it passes unless `budget_ms` is set and exceeded. The
figures say which runtime measured them (ONNX Runtime on this machine's CPU for `ort`; targets whose
real runtime is elsewhere report what ran here), so a report never passes CPU numbers off as GPU ones,
and with how many threads (a `-j N` worker has 1/N of the cores).
"""

from __future__ import annotations

import statistics
import time
from typing import ClassVar

from pydantic import Field

from recipekit.gates.base import Gate, GateConfig, GateContext, GateResult


class LatencyConfig(GateConfig):
    runs: int = Field(5, ge=1, le=100, description="timed runs per batch size (after one warm-up run)")
    budget_ms: float | None = Field(
        None, gt=0, description="fail when the median at batch 1 (or min batch) exceeds this"
    )


def batch_sizes(ctx: GateContext) -> list[int]:
    b = ctx.recipe.export.batch
    return sorted({b.min, b.opt, b.max}) if ctx.recipe.export.dynamic_batch else [b.max]


class Latency(Gate):
    name: ClassVar[str] = "latency"
    version: ClassVar[str] = "2"
    Config = LatencyConfig

    def check(self, ctx: GateContext) -> GateResult:
        import numpy as np

        runner, golden = ctx.runner(), ctx.golden()
        x1 = golden.cases[0].input
        per_batch = {}
        for n in batch_sizes(ctx):
            x = np.concatenate([x1] * n)
            runner.run_one(x)
            times = []
            for _ in range(self.config.runs):
                t0 = time.perf_counter()
                runner.run_one(x)
                times.append((time.perf_counter() - t0) * 1000)
            per_batch[str(n)] = {"median_ms": round(statistics.median(times), 3), "min_ms": round(min(times), 3)}
        figures = {"runner": runner.description, "shape": list(golden.cases[0].shape), "per_batch": per_batch}
        if getattr(runner, "threads", None):  # a -j N worker has its share of the cores: timings differ by -j
            figures["threads"] = runner.threads
        first = per_batch[min(per_batch, key=int)]["median_ms"]
        budget = self.config.budget_ms
        if budget is not None and first > budget:
            return GateResult("failed", figures, [f"median {first:.1f} ms > budget_ms {budget}"], "over budget")
        return GateResult(
            "passed",
            figures,
            message=f"median {first:.1f} ms at batch {min(per_batch, key=int)} on {runner.description}",
        )
