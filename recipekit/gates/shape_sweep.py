"""shape-sweep: source against artifact at every shape the artifact must serve (field note 4).

RTMO's deploy head built its priors as (W//s, H//s): square inputs hide the swap, a 640x1280 input
shifts every keypoint. Checking only the export size cannot catch that, so this gate runs the
declared shapes (rectangular ones included) and, where H/W are dynamic, the profile's min/opt/max,
each with its own verdict. A shape the artifact rejects is a failure naming the shape, not a crash.
A profile shape without a golden case (no PyTorch reference) is only run and checked for errors
and non-finite outputs. When every shape to sweep is one parity already compares (the declared
shapes, on the same artifact), the sweep would repeat parity: it reports `not applicable` with that
reason. On an INT8 artifact it is `not applicable` too (the accuracy gate judges it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from recipekit.gates.base import Gate, GateContext, GateResult
from recipekit.gates.tolerance import ToleranceConfig, decide, int8_deferred, layers, summarize, unknown_keys

if TYPE_CHECKING:
    import numpy as np

    from recipekit.onnx.golden import Golden
    from recipekit.onnx.runtime import Runner
    from recipekit.recipe.schema import Recipe


class ShapeSweepConfig(ToleranceConfig):
    """Tolerances as parity's."""


def sweep_shapes(recipe: Recipe, target_manifest: dict[str, Any]) -> dict[tuple[int, int], list[str]]:
    """Shape -> its roles: every declared shape; with dynamic H/W also min/opt/max, taken from the
    target manifest's `profile_shapes` ({"min": [H, W], ...}) or else the smallest, export and
    largest declared shapes."""
    declared = [tuple(s) for s in recipe.shapes()]
    roles: dict[tuple[int, int], list[str]] = {}
    for s in declared:
        roles.setdefault(s, []).append("export" if s == declared[0] else "declared")
        if s[0] != s[1]:
            roles[s].append("rectangular")
    if recipe.export.dynamic.hw:
        prof = target_manifest.get("profile_shapes") or {}
        by_area = sorted(declared, key=lambda s: s[0] * s[1])
        derived = {"min": by_area[0], "opt": declared[0], "max": by_area[-1]}
        for role, default in derived.items():
            roles.setdefault(tuple(prof.get(role, default)), []).append(role)
    return roles


class ShapeSweep(Gate):
    """Per shape: golden cases compared with the artifact's outputs, or a run-only check."""

    name: ClassVar[str] = "shape-sweep"
    version: ClassVar[str] = "7"
    Config = ShapeSweepConfig
    default_tolerances: ClassVar[dict[str, Any]] = {}

    @classmethod
    def not_applicable(cls, recipe: Any, target: str) -> str | None:
        return int8_deferred(recipe, target, cls.name)

    def check(self, ctx: GateContext) -> GateResult:
        golden, runner = ctx.golden(), ctx.runner()
        bad_keys = unknown_keys(self.config, golden.output_names, ctx.output_kinds)
        if bad_keys:
            return GateResult("failed", failures=bad_keys, message="tolerance keys that name no output")
        roles = sweep_shapes(ctx.recipe, ctx.target_manifest)
        parity_shapes = {tuple(c.shape) for c in golden.cases}
        if set(roles) <= parity_shapes:
            shown = ", ".join(f"{s[0]}x{s[1]}" for s in roles)
            why = f"nothing beyond the parity shapes ({shown}): parity compares them on the same artifact"
            return GateResult(
                "not applicable", figures={"shapes": {f"{s[0]}x{s[1]}": r for s, r in roles.items()}}, message=why
            )
        rows: list[dict[str, Any]] = []
        for shape, why in roles.items():
            rows += self._shape_rows(ctx, golden, runner, shape, why)
        per_shape = {}
        for s, why in roles.items():
            mine = [r for r in rows if tuple(r["shape"]) == s]
            per_shape[f"{s[0]}x{s[1]}"] = {
                "roles": why,
                "passed": all(r["passed"] for r in mine),
                "outputs": summarize(mine),
            }
        return decide(rows, where, figures={"shapes": per_shape, "runner": runner.description})

    def _shape_rows(
        self, ctx: GateContext, golden: Golden, runner: Runner, shape: tuple[int, int], roles: list[str]
    ) -> list[dict[str, Any]]:
        from recipekit.onnx.compare import compare_outputs

        cases = golden.at(shape)
        base = {"shape": list(shape), "roles": roles}
        if not cases:
            return [{**base, "sample": "unreferenced", **self._run_only(ctx, runner, shape)}]
        rows = []
        for case in cases:
            got = _run(runner, case.input)
            if isinstance(got, str):
                rows.append({**base, "sample": case.sample, "output": "*", "passed": False, "reason": got})
                continue
            tol = layers(self.config, self.default_tolerances, fp16=ctx.recipe.export.precision == "fp16")
            for row in compare_outputs(golden.output_names, case.outputs, got, ctx.output_kinds, tol, shape):
                rows.append({**base, "sample": case.sample, **row})
        return rows

    def _run_only(self, ctx: GateContext, runner: Runner, shape: tuple[int, int]) -> dict[str, Any]:
        """No reference at this shape: the artifact must run and give finite outputs."""
        import numpy as np

        from recipekit.onnx.preprocess import random_tensor

        x = random_tensor(shape, ctx.recipe.input.preprocess, seed=0, dtype=ctx.recipe.input.dtype)
        got = _run(runner, x)
        if isinstance(got, str):
            return {"output": "*", "passed": False, "reason": got}
        outs = zip(runner.output_names, got, strict=True)
        bad = [n for n, o in outs if o.dtype.kind == "f" and not np.isfinite(o).all()]
        return {
            "output": bad[0] if bad else "*",
            "kind": "run-only",
            "passed": not bad,
            "reason": f"non-finite values in {', '.join(bad)} (no reference at this shape)" if bad else "",
        }


def _run(runner: Runner, x: np.ndarray) -> list[np.ndarray] | str:
    """The outputs, or the runtime's error as a failure reason (an unsupported shape is a verdict)."""
    try:
        return runner.run_one(x)
    except Exception as exc:  # ORT/TensorRT raise their own types; any of them fails this shape
        return f"the artifact raised: {str(exc).splitlines()[0][:300]}"


def where(row: dict) -> str:
    return f"{row['shape'][0]}x{row['shape'][1]} ({'/'.join(row['roles'])}, {row['sample']})"
