"""The gate step: build the GateContext, run the gate (cached by key), turn a failure into a step failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core import tools
from recipekit.core.errors import Unavailable
from recipekit.graph.stages.common import ONNX_TOOLS, KeyParts, golden_loader

if TYPE_CHECKING:
    from recipekit.gates.base import GateContext
    from recipekit.graph.context import Output, StepContext
    from recipekit.graph.plan import Step
    from recipekit.graph.results import GateOutcome
    from recipekit.recipe.schema import Recipe


def gate_class(name: str) -> Any:
    from recipekit.gates import GATES

    return GATES.get(name)


def key_parts(step: Step, recipe: Recipe) -> KeyParts:
    cls = gate_class(step.plugin)
    gate = cls(cls.Config.model_validate(step.config["gate"]))
    files = {f"gate/{p}": p for p in ([] if gate.config.skip else gate.input_files(recipe))}  # e.g. a labelled set
    return KeyParts(cls.version, tools.versions(ONNX_TOOLS), files, getattr(cls, "environment_key", dict)())


def _context(ctx: StepContext) -> GateContext:
    from recipekit.gates.base import GateContext
    from recipekit.graph.precision_plan import target_onnx
    from recipekit.graph.stages.compile import target_context, target_of
    from recipekit.targets.base import BuildResult

    fixed = target_onnx(ctx)  # what the target compiles
    fp32 = ctx.up("fix").file("model.onnx")
    kinds = ctx.up("export").result.output_kinds  # type: ignore[union-attr]
    target, golden = ctx.step.target or "", golden_loader(ctx)
    if ctx.config["stage"] == "pre":
        from recipekit.onnx.runtime import OrtRunner

        return GateContext(
            ctx.recipe,
            target,
            fixed.parent,
            fixed.name,
            fixed,
            lambda: OrtRunner(fixed),
            golden,
            {},
            kinds,
            ctx.state_dir(ctx.step.plugin),
            fp32_onnx=fp32,
        )
    comp = ctx.up("compile")
    res = BuildResult(comp.result.artifact, comp.result.manifest)  # type: ignore[union-attr]
    target_plugin, tctx, folder = target_of(ctx), target_context(ctx), comp.path
    name = ctx.task.split(":", 1)[0]  # the recipe's name (task names are <recipe>:<stage>:<plugin>)
    report = Path(ctx.settings["out"]) / name / "report" / target if ctx.settings.get("out") else None
    return GateContext(
        ctx.recipe,
        target,
        folder,
        res.artifact,
        fixed,
        lambda: target_plugin.runner(folder, res, tctx),
        golden,
        res.manifest,
        kinds,
        ctx.state_dir(ctx.step.plugin),
        fp32_onnx=fp32,
        report_dir=report,
    )


def _outcome(ctx: StepContext, status: str, outcome: GateOutcome, **kw: Any) -> Output:
    from recipekit.graph.context import Output

    return Output(ctx.task, "gate", status, ctx.key, result=outcome, **kw)


def skipped(task: str, key: str, reason: str, verdict: str = "skipped") -> Output:
    """The output of a gate the plan does not run: the recipe skips it (`skipped`, the target is then
    unverified) or it cannot apply to this recipe (`not applicable`). Nothing is cached for it: its key
    says it all."""
    from recipekit.graph.context import Output
    from recipekit.graph.results import GateOutcome

    return Output(task, "gate", "skipped", key, result=GateOutcome(status=verdict, message=reason))


def run(ctx: StepContext) -> Output:
    from recipekit.graph.results import GateOutcome

    cls = gate_class(ctx.step.plugin)
    gate = cls(cls.Config.model_validate(ctx.config["gate"]))
    if gate.config.skip:
        return skipped(ctx.task, ctx.key, gate.config.skip)
    if ctx.config.get("not_applicable"):  # decided at plan with the whole recipe (INT8 parity): the step does not run
        return skipped(ctx.task, ctx.key, ctx.config["not_applicable"], "not applicable")
    comp = ctx.upstream.get("compile")
    if comp and comp.status == "unavailable":
        return _outcome(ctx, "unavailable", GateOutcome(status="unavailable", message=comp.reason), reason=comp.reason)

    def build(work: Path) -> GateOutcome:
        result = GateOutcome.model_validate(gate.check(_context(ctx)).to_json())
        if result.status == "unavailable":  # not cached: it may run on the next machine
            raise Unavailable(result.message)
        (work / "result.json").write_text(json.dumps(result.to_json(), indent=1, sort_keys=True, default=float))
        return result

    try:
        out = ctx.cached(build)
    except Unavailable as exc:
        return _outcome(ctx, "unavailable", GateOutcome(status="unavailable", message=exc.reason))
    result: GateOutcome = out.result  # type: ignore[assignment]
    if result.status == "failed":
        status = "failed" if out.status == "ran" else "failed (cached)"
        error = f"gate {ctx.step.plugin} failed: " + "; ".join(result.failures[:5])
        return _outcome(ctx, status, result, path=out.path, files=out.files, error=error, seconds=out.seconds)
    return out
