"""The compile step: the target plugin turns the fixed ONNX into its artifact."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core import tools
from recipekit.core.errors import StepFailed, Unavailable
from recipekit.graph.stages.common import ONNX_TOOLS, KeyParts, golden_loader, sample_files

if TYPE_CHECKING:
    from recipekit.graph.context import Output, StepContext
    from recipekit.graph.plan import Step
    from recipekit.recipe.schema import Recipe
    from recipekit.targets.base import TargetContext


def target_class(name: str) -> Any:
    from recipekit.targets import TARGETS

    return TARGETS.get(name)


def key_parts(step: Step, recipe: Recipe) -> KeyParts:
    cls = target_class(step.plugin)
    files = sample_files(recipe) if getattr(cls, "reads_samples", False) else {}
    environment = getattr(cls, "environment_key", dict)()
    return KeyParts(cls.version, tools.versions(ONNX_TOOLS), files, environment)


def target_of(ctx: StepContext) -> Any:
    return target_class(ctx.step.target)(ctx.recipe.targets[ctx.step.target].config)


def target_context(ctx: StepContext) -> TargetContext:
    from recipekit.targets.base import TargetContext

    kinds = ctx.up("export").result.output_kinds  # type: ignore[union-attr]
    return TargetContext(ctx.recipe, ctx.state_dir(ctx.step.target or ctx.step.plugin), golden_loader(ctx), kinds)


def run(ctx: StepContext) -> Output:
    from recipekit.graph.context import Output
    from recipekit.graph.precision_plan import target_onnx
    from recipekit.graph.results import CompileResult

    target = target_of(ctx)

    def build(work: Path) -> CompileResult:
        res = target.build(target_onnx(ctx), work, target_context(ctx))
        return CompileResult(artifact=res.artifact, manifest=res.manifest)

    try:
        return ctx.cached(build)
    except Unavailable as exc:
        if ctx.settings.get("require"):
            raise StepFailed(ctx.task, f"required target unavailable: {exc.reason}") from None
        return Output(ctx.task, "compile", "unavailable", ctx.key, reason=exc.reason)
