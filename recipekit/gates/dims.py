"""Shape facts for the `static-dims` and `trt-lint` gates, as TensorRT's ONNX parser would see them.

TensorRT builds its network from the graph, not from the `value_info` an exporter writes, and it
cannot evaluate a Reshape whose target shape is computed from `Shape` at run time: the Reshape's
output dims become -1 (field note 3: `model.10/attn/pe` sees (-1,-1,-1,-1) and the grouped Conv is
rejected). So the dims here come from ONNX shape inference on the graph with the exporter's
`value_info` removed and without data propagation: a dim is known only if it follows from
constants. That is conservative by design: a Conv input known here is known to TensorRT.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

    from recipekit.recipe.schema import Recipe

Dim = int | str | None  # a size, a symbolic name, or unknown
CONV_OPS = ("Conv", "ConvTranspose")
# ops whose first output has the dims of their first input: followed back to find where dims got lost
SHAPE_KEEPING = {
    "Softmax",
    "Sigmoid",
    "Relu",
    "Mul",
    "Add",
    "Sub",
    "Div",
    "Identity",
    "Cast",
    "Clip",
    "LeakyRelu",
    "HardSwish",
    "Tanh",
    "BatchNormalization",
    "Transpose",
    "Split",
    "Slice",
}


@dataclass(frozen=True)
class Expect:
    """Which input axes the recipe declares dynamic, and the input layout."""

    batch: bool
    hw: bool
    layout: str = "nchw"

    @classmethod
    def of(cls, recipe: Recipe) -> Expect:
        return cls(recipe.export.dynamic_batch, recipe.export.dynamic.hw, recipe.input.preprocess.layout)

    def axes(self) -> dict[int, str]:
        """Axis index -> role, for a rank-4 image input."""
        return (
            {0: "batch", 1: "channels", 2: "height", 3: "width"}
            if self.layout == "nchw"
            else {0: "batch", 1: "height", 2: "width", 3: "channels"}
        )

    def dynamic(self, role: str) -> bool:
        return {"batch": self.batch, "height": self.hw, "width": self.hw}.get(role, False)


def load(path: Path) -> onnx.ModelProto:
    import onnx

    return onnx.load(str(path))


def strict_shapes(model: onnx.ModelProto) -> dict[str, list[Dim] | None]:
    """Tensor name -> dims after shape inference without the exporter's value_info (None: rank unknown)."""
    import onnx
    from onnx import shape_inference

    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]
    inferred = shape_inference.infer_shapes(bare, strict_mode=False, data_prop=False)
    out: dict[str, list[Dim] | None] = {}
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        out[vi.name] = _dims(vi)
    return out


def _dims(vi: onnx.ValueInfoProto) -> list[Dim] | None:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim]


def show(dims: list[Dim] | None) -> str:
    if dims is None:
        return "(rank unknown)"
    return (
        "("
        + ",".join(
            str(d) if isinstance(d, int) else (d if isinstance(d, str) and not d.startswith("unk__") else "?")
            for d in dims
        )
        + ")"
    )


def graph_inputs(model: onnx.ModelProto) -> dict[str, list[Dim] | None]:
    inits = {i.name for i in model.graph.initializer}
    return {i.name: _dims(i) for i in model.graph.input if i.name not in inits}


def input_findings(model: onnx.ModelProto, expect: Expect) -> list[str]:
    """Graph input axes that are dynamic where the recipe says static, or the reverse."""
    out = []
    for name, dims in graph_inputs(model).items():
        if dims is None or len(dims) != 4:
            continue
        for axis, role in expect.axes().items():
            dyn, want = not isinstance(dims[axis], int) or dims[axis] <= 0, expect.dynamic(role)
            if dyn and not want:
                out.append(
                    f"input {name!r} axis {axis} ({role}) is dynamic {show(dims)} but the recipe declares it static"
                    + (" (export.dynamic.hw: false)" if role in ("height", "width") else "")
                )
            elif want and not dyn:
                out.append(
                    f"input {name!r} axis {axis} ({role}) is fixed to {dims[axis]} but the recipe declares it dynamic"
                )
    return out


def conv_findings(model: onnx.ModelProto, shapes: dict[str, list[Dim] | None], expect: Expect) -> tuple[list[str], int]:
    """Conv inputs without a known channel count (or known H, W / batch where declared static)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    expect = _with_input_axes(model, expect)
    found, checked = [], 0
    for node in model.graph.node:
        if node.op_type not in CONV_OPS:
            continue
        checked += 1
        dims = shapes.get(node.input[0])
        missing = _missing(dims, expect)
        if missing:
            why = origin(node.input[0], producers, shapes)
            found.append(f"{node.op_type} {node.name!r}: input {show(dims)} has unknown {', '.join(missing)}{why}")
    return found, checked


def _with_input_axes(model: onnx.ModelProto, expect: Expect) -> Expect:
    """Axes the graph input already has dynamic count as allowed here: `input_findings` reports them
    once, instead of every Conv downstream repeating the same cause."""
    dyn = {
        role
        for dims in graph_inputs(model).values()
        if dims and len(dims) == 4
        for axis, role in expect.axes().items()
        if not (isinstance(dims[axis], int) and dims[axis] > 0)
    }
    return Expect(expect.batch or "batch" in dyn, expect.hw or bool(dyn & {"height", "width"}), expect.layout)


def _missing(dims: list[Dim] | None, expect: Expect) -> list[str]:
    if dims is None or len(dims) < 3:
        return ["rank"] if dims is None else []
    roles = ["batch", "channels", *(["height", "width", "depth"][: len(dims) - 2])]
    return [
        r for r, d in zip(roles, dims, strict=False) if not (isinstance(d, int) and d > 0) and not expect.dynamic(r)
    ]


def origin(tensor: str, producers: dict[str, Any], shapes: dict[str, list[Dim] | None]) -> str:
    """Where the dims were lost: the first node back whose output dims are unknown but input dims known."""
    seen = 0
    while tensor in producers and seen < 50:
        node, seen = producers[tensor], seen + 1
        if node.op_type not in SHAPE_KEEPING or not node.input:
            computed = (
                node.op_type == "Reshape" and getattr(producers.get(node.input[1]), "op_type", "Constant") != "Constant"
            )
            detail = " (its target shape is computed at run time)" if computed else ""
            return f"; dims lost at {node.op_type} {node.name!r}{detail}"
        tensor = node.input[0]
    return ""
