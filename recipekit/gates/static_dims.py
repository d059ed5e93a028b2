"""static-dims: every Conv input has a known channel count, and dims are dynamic only where the recipe says.

Field note 3: with a dynamic batch axis, a Reshape whose target shape is computed from the traced
tensor's run-time shape leaves the next Conv with dims (-1,-1,-1,-1), and TensorRT rejects the
grouped Conv. Caught here on the fixed ONNX, before any target compiles, with the Conv named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from recipekit.gates.base import Gate, GateConfig, GateContext, GateResult

if TYPE_CHECKING:
    import onnx

    from recipekit.gates.dims import Expect


class StaticDimsConfig(GateConfig):
    """No options beyond `skip`: what may be dynamic comes from the recipe's `export.dynamic`."""


class StaticDimsGate(Gate):
    """Shape inference as TensorRT's parser sees the graph (see `_dims`); no runtime is needed."""

    name: ClassVar[str] = "static-dims"
    version: ClassVar[str] = "1"
    Config = StaticDimsConfig
    uses_golden: ClassVar[bool] = False
    before_compile: ClassVar[bool] = True

    def check(self, ctx: GateContext) -> GateResult:
        from recipekit.gates import dims as _dims

        model = _dims.load(ctx.onnx_path)
        return dims_result(model, _dims.Expect.of(ctx.recipe))


def dims_findings(model: onnx.ModelProto, expect: Expect) -> tuple[list[str], dict[str, Any]]:
    """Input-axis and Conv findings, and the figures behind them."""
    from recipekit.gates import dims as _dims

    shapes = _dims.strict_shapes(model)
    inputs = _dims.input_findings(model, expect)
    convs, checked = _dims.conv_findings(model, shapes, expect)
    figures = {
        "inputs": {k: _dims.show(v) for k, v in _dims.graph_inputs(model).items()},
        "convs_checked": checked,
        "convs_unknown": len(convs),
        "declared_dynamic": {"batch": expect.batch, "hw": expect.hw},
        "inference": "onnx shape inference without exporter value_info, no data propagation",
    }
    return inputs + convs, figures


def dims_result(model: onnx.ModelProto, expect: Expect) -> GateResult:
    failures, figures = dims_findings(model, expect)
    msg = (
        f"{figures['convs_checked']} Conv input(s) with known channel counts; input axes match the recipe"
        if not failures
        else f"{len(failures)} shape problem(s) TensorRT would reject or mis-build"
    )
    return GateResult("failed" if failures else "passed", figures=figures, failures=failures, message=msg)
