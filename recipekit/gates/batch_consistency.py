"""batch-consistency: every item of a batch-N run equals a batch-1 run of that item (field note 2).

Batch 1 working says nothing about batch 4: output buffers sized or indexed without the batch axis
(tensorrtx's YOLO layer) or a reshape that mixes items corrupt only larger batches. So the gate runs
each batch size the profile allows that matters (min, opt, max and one between) and compares item
by item with batch-1 runs of the artifact itself, not with PyTorch: this isolates the batch axis.
A static-batch artifact cannot run batch 1; its references are uniform batches (the item repeated),
which still expose cross-item interference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from recipekit.gates.base import Gate, GateContext, GateResult
from recipekit.gates.tolerance import ToleranceConfig, decide, layers, unknown_keys

if TYPE_CHECKING:
    import numpy as np

    from recipekit.onnx.runtime import Runner
    from recipekit.recipe.schema import Batch


class BatchConsistencyConfig(ToleranceConfig):
    """Tolerances as parity's (the same artifact on both sides, so differences come from kernels only)."""

    sizes: list[int] | None = Field(None, description="batch sizes to check; default: min, opt, max and one between")


def batch_sizes(batch: Batch) -> list[int]:
    """min, opt, max and one size strictly between that is none of them (the middle one)."""
    sizes = {batch.min, batch.opt, batch.max}
    between = [n for n in range(batch.min + 1, batch.max) if n not in sizes]
    if between:
        sizes.add(between[len(between) // 2])
    return sorted(sizes)


def item(outputs: list[np.ndarray], names: list[str], i: int, n: int) -> list[np.ndarray] | str:
    """Item i of batch-n outputs (kept with a batch axis of 1), or why the outputs cannot be split."""
    for name, out in zip(names, outputs, strict=True):
        if out.ndim == 0 or out.shape[0] != n:
            return f"output {name} has shape {list(out.shape)}: no leading batch axis of {n}"
    return [out[i : i + 1] for out in outputs]


class BatchConsistency(Gate):
    """Batch-N items against batch-1 runs, for every batch size that matters."""

    name: ClassVar[str] = "batch-consistency"
    version: ClassVar[str] = "6"
    Config = BatchConsistencyConfig
    default_tolerances: ClassVar[dict[str, Any]] = {}

    def check(self, ctx: GateContext) -> GateResult:
        recipe, golden = ctx.recipe, ctx.golden()
        shape = tuple(recipe.shapes()[0])
        self.hw = shape
        inputs = [c.input for c in golden.at(shape)]
        static = not recipe.export.dynamic_batch
        sizes = [recipe.export.batch.max] if static else (self.config.sizes or batch_sizes(recipe.export.batch))
        if max(sizes) < 2:
            return GateResult("not applicable", figures={"sizes": sizes}, message="the profile allows batch 1 only")
        if not inputs:
            why = f"not exercised: no golden case at {shape[0]}x{shape[1]}"
            return GateResult("skipped", figures={"sizes": sizes}, message=why)
        runner = ctx.runner()
        bad_keys = unknown_keys(self.config, runner.output_names, ctx.output_kinds)
        if bad_keys:
            return GateResult("failed", failures=bad_keys, message="tolerance keys that name no output")
        rows, errors = [], []
        singles = self._references(runner, inputs, max(sizes) if static else 1, errors)
        for n in (s for s in sizes if s > 1 and singles):
            rows += self._rows_for(runner, ctx.output_kinds, inputs, singles, n, errors)
        figures = {
            "sizes": sizes,
            "shape": list(shape),
            "static_batch": static,
            "samples": len(inputs),
            "reference": "uniform batch" if static else "batch 1",
            "runner": runner.description,
        }
        return decide(rows, where, errors, figures)

    def _references(
        self, runner: Runner, inputs: list[np.ndarray], n: int, errors: list[str]
    ) -> list[list[np.ndarray]]:
        """Per sample, the reference outputs: a batch-1 run (or item 0 of a uniform batch of n)."""
        import numpy as np

        refs = []
        for k, x in enumerate(inputs):
            try:
                outs = runner.run_one(np.repeat(x, n, axis=0) if n > 1 else x)
            except Exception as exc:  # a runtime's error is the verdict here, not a crash of recipekit
                errors.append(f"reference run of sample {k} at batch {n} raised: {str(exc).splitlines()[0][:300]}")
                return []
            part = item(outs, runner.output_names, 0, n)
            if isinstance(part, str):
                errors.append(f"batch {n}: {part}")
                return []
            refs.append(part)
        return refs

    def _rows_for(
        self,
        runner: Runner,
        kinds: dict[str, Any],
        inputs: list[np.ndarray],
        singles: list[list[np.ndarray]],
        n: int,
        errors: list[str],
    ) -> list[dict[str, Any]]:
        """Run one batch of n (samples cycled) and compare each item with its reference."""
        import numpy as np

        from recipekit.onnx.compare import compare_outputs

        order = [i % len(inputs) for i in range(n)]
        try:
            outs = runner.run_one(np.concatenate([inputs[k] for k in order], axis=0))
        except Exception as exc:  # e.g. TensorRT's CUDNN_STATUS_NOT_INITIALIZED at batch 4: a failure, named
            errors.append(f"batch {n} run raised: {str(exc).splitlines()[0][:300]}")
            return []
        rows = []
        for i, k in enumerate(order):
            part = item(outs, runner.output_names, i, n)
            if isinstance(part, str):
                errors.append(f"batch {n}: {part}")
                return rows
            tol = layers(self.config, self.default_tolerances)
            for row in compare_outputs(runner.output_names, singles[k], part, kinds, tol, self.hw):
                rows.append({"batch": n, "item": i, "sample": k, **row})
        return rows


def where(row: dict) -> str:
    return f"batch {row['batch']} item {row['item']}"
