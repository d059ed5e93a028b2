"""Planning for precision: whether there is a precision step, targets that refuse a precision, the
accuracy gate default.

Three modules say "precision", each for one thing: this one plans (graph.plan builds the step from
what it says), recipekit.graph.stages.precision runs the step, and recipekit.precision holds the
conversions (fp16, INT8 QDQ) that stage calls. One precision step follows the fix chain and every
target compiles its ONNX; with fp32 there is no step and targets compile the fixed ONNX.
"""

from __future__ import annotations

from typing import Any


def onnx_role(upstream: Any) -> str:
    """The upstream role whose model.onnx targets compile: precision when there is one."""
    return "precision" if "precision" in upstream else "fix"


def target_onnx(ctx: Any) -> Any:
    """The ONNX file the step's target compiles: the precision step's (its twin where the target takes
    other INT8 activations), else the fixed model."""
    from recipekit.targets import TARGETS

    role = onnx_role(ctx.upstream)
    acts = getattr(TARGETS.get(ctx.step.target or ""), "int8_activations", None)
    twin = f"model-{acts}.onnx"
    if role == "precision" and acts and twin in ctx.up(role).files:
        return ctx.up(role).file(twin)
    return ctx.up(role).file("model.onnx")


# --- planning ---------------------------------------------------------------------------------


def precision_plugin(recipe: Any) -> str | None:
    """The precision step's plugin after the fix chain (`fp16`, `int8`), or None for fp32 (no step:
    targets compile the fixed ONNX). The step reads input (preprocessing, calibration, samples) and
    export (size, precision, quantization); an INT8 step that measures sensitivity also the accuracy
    gate's measure and the export's output kinds (graph.plan)."""
    precision = recipe.export.precision
    return None if precision == "fp32" else precision


def measures_sensitivity(q: Any) -> bool:
    """An INT8 step ranks nodes (and needs the task metric) when its table is measured."""
    return q.sensitivity is not None and q.sensitivity.measured(q.goal)


def twin_activations(recipe: Any) -> str | None:
    """The INT8 activations a declared target compiles that the recipe's are not (TensorRT: symmetric
    int8 beside uint8 for ONNX Runtime): the precision step also writes `model-<activations>.onnx`, the
    same float nodes quantized that way. None: every target compiles model.onnx."""
    from recipekit.targets import TARGETS

    if recipe.export.precision != "int8":
        return None
    own = recipe.export.quantization.activations
    wanted = {getattr(TARGETS.get(name), "int8_activations", None) for name in recipe.targets}
    return next(iter(sorted(wanted - {None, own})), None)


def refuse(recipe: Any, targets: list[str]) -> None:
    """Targets that cannot take the recipe's precision: one clear line before any step runs."""
    from recipekit.core.errors import RecipeError
    from recipekit.targets import TARGETS

    for name in targets:
        why = getattr(TARGETS.get(name), "refuses_precision", lambda r: None)(recipe)
        if why:
            raise RecipeError(recipe.origin or recipe.name, "export.precision", f"targets.{name}: {why}")


def default_gates(recipe: Any) -> list[str]:
    """The accuracy gate runs by default on fp16 (recorded) and int8 (judged) builds; fp32 builds
    record it when the recipe configures `gates.accuracy` (their parity gate already bounds it)."""
    return [] if recipe.export.precision == "fp32" else ["accuracy"]
