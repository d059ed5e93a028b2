"""empty-input: a blank image through the artifact (field notes 1 and 5).

A blank image makes NMS keep nothing, which is where post-processing graphs break: torchvision's
traced Faster R-CNN raises `cannot reshape tensor of shape {0,..} to {-1,4}`-style errors, and
Ultralytics' nms=True graph pads an empty tensor, which ORT's WebGPU (JSEP) kernels reject. The gate
runs ONNX Runtime with every intermediate tensor as an output, so the zero-sized ones can be listed
with the ops that make and read them, even on a machine without a browser. It checks: no error,
outputs as declared (rank and fixed dims), and zero-sized intermediates (listed; failing when
`zero_sized: fail`, as WebGPU targets want).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from recipekit.gates.base import Gate, GateConfig, GateContext, GateResult


class EmptyInputConfig(GateConfig):
    """What a blank image is, and whether zero-sized intermediates fail the gate."""

    value: int = Field(0, ge=0, le=255, description="pixel value (0..255) of the blank image, before preprocessing")
    zero_sized: Literal["report", "fail"] = Field(
        "report", description="zero-sized intermediate tensors: list them (report) or fail (WebGPU JSEP rejects them)"
    )
    shapes: Literal["export", "all"] = Field("export", description="the export size only, or every declared shape")


def graph_facts(path: Path) -> dict[str, Any]:
    """Declared outputs (name -> dims, int or symbol) and, per tensor, the op making it and the ops reading it."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    dims = {
        o.name: [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in o.type.tensor_type.shape.dim]
        for o in model.graph.output
    }
    producer, consumers = {}, {}
    for node in model.graph.node:
        label = f"{node.op_type} {node.name}".strip()
        for name in node.output:
            producer[name] = label
        for name in node.input:
            consumers.setdefault(name, []).append(label)
    return {"outputs": dims, "producer": producer, "consumers": consumers}


def output_problems(declared: dict[str, list], values: dict[str, Any]) -> list[str]:
    """Each declared output must come back with the declared rank and every fixed dim."""
    out = []
    for name, dims in declared.items():
        got = list(values[name].shape)
        fixed_ok = all(not isinstance(d, int) or d == 0 or d == g for d, g in zip(dims, got, strict=False))
        if len(got) != len(dims) or not fixed_ok:
            out.append(f"output {name}: shape {got} != declared {dims}")
    return out


def zero_sized(values: dict[str, Any], facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Every zero-sized tensor, with the op that made it and the ops that read it."""
    return [
        {
            "tensor": name,
            "shape": list(v.shape),
            "producer": facts["producer"].get(name, "?"),
            "consumers": facts["consumers"].get(name, []),
            "graph_output": name in facts["outputs"],
        }
        for name, v in values.items()
        if getattr(v, "size", 1) == 0
    ]


class EmptyInput(Gate):
    """Blank image in: no error, declared output shapes, zero-sized intermediates listed."""

    name: ClassVar[str] = "empty-input"
    version: ClassVar[str] = "1"
    Config = EmptyInputConfig
    uses_golden: ClassVar[bool] = False

    def check(self, ctx: GateContext) -> GateResult:
        from recipekit.onnx.runtime import ort_with_all_outputs

        facts = graph_facts(ctx.onnx_path)
        try:
            runner = ort_with_all_outputs(ctx.onnx_path)
        except Exception as exc:  # ORT's own error types: a model it cannot load fails the gate
            return GateResult("failed", failures=[f"ONNX Runtime cannot load {ctx.onnx_path.name}: {_first_line(exc)}"])
        shapes = ctx.recipe.shapes() if self.config.shapes == "all" else ctx.recipe.shapes()[:1]
        figures: dict[str, Any] = {"onnx": ctx.onnx_path.name, "value": self.config.value, "runner": runner.description}
        failures: list[str] = []
        for shape in shapes:
            key = f"{shape[0]}x{shape[1]}"
            figures[key], found = self._one(ctx, runner, facts, tuple(shape))
            failures += [f"blank {key}: {f}" for f in found]
        n_zero = sum(len(figures[f"{s[0]}x{s[1]}"].get("zero_sized_intermediates", [])) for s in shapes)
        figures["zero_sized_intermediates"] = n_zero
        if self.config.zero_sized == "fail" and n_zero:
            failures.append(f"zero_sized_intermediates {n_zero} > 0 (zero_sized: fail)")
        msg = f"blank image ran; {n_zero} zero-sized intermediate tensor(s)" if not failures else "blank image failed"
        return GateResult("failed" if failures else "passed", figures=figures, failures=failures, message=msg)

    def _one(
        self, ctx: GateContext, runner: Any, facts: dict[str, Any], shape: tuple[int, int]
    ) -> tuple[dict, list[str]]:
        """Figures and failures for one blank image."""
        from recipekit.onnx.preprocess import blank_tensor

        pre, dtype = ctx.recipe.input.preprocess, ctx.recipe.input.dtype
        x = blank_tensor(shape, pre, self.config.value, dtype)
        name = ctx.recipe.input.name or runner.input_names[0]
        try:
            outs = runner.run({name: x})
        except Exception as exc:  # the runtime error *is* the finding (e.g. the Reshape of field note 5)
            return {"error": _first_line(exc)}, [f"the artifact raised: {_first_line(exc)}"]
        values = dict(zip(runner.output_names, outs, strict=True))
        zeros = zero_sized(values, facts)
        fig = {
            "outputs": {n: list(values[n].shape) for n in facts["outputs"]},
            "zero_sized_intermediates": [z for z in zeros if not z["graph_output"]],
            "zero_sized_outputs": [z["tensor"] for z in zeros if z["graph_output"]],
        }
        return fig, output_problems(facts["outputs"], values)


def _first_line(exc: BaseException) -> str:
    """One line of a runtime's message; long ones keep their head (which node) and tail (why)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 400 else f"{text[:200]} ... {text[-200:]}"
