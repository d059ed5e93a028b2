"""Small, measured facts about an ONNX graph that fixes and gates both check.

Why here: a fix's guarantee and a gate's verdict must use the same definition of "unknown Conv
channel" or "zero-sized tensor", or a fix could pass its own check and still fail the gate.
Shapes are inferred by onnx itself after dropping stored value_info, because exporters and
simplifiers (onnxslim) store shapes the graph does not imply, which would hide the very defect.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from recipekit.recipe.schema import Recipe

Dim = int | str | None
"""A dimension: an int when known, a symbolic name, or None when nothing is known."""

# Ops whose output size depends on the data: their outputs can have zero rows (webgpu-lint, the zero-safe fixes).
EMPTY_SOURCES = frozenset({"NonMaxSuppression", "NonZero", "Compress", "Unique"})

RANDOM_OPS = frozenset(
    {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
)


def dims(value_info: onnx.ValueInfoProto) -> list[Dim] | None:
    """The dims of a tensor value, or None when even its rank is unknown."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def without_value_info(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy without stored intermediate shapes (inputs and outputs keep their declared shapes)."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.value_info[:]
    return out


def infer(model: onnx.ModelProto, data_prop: bool = False) -> onnx.ModelProto:
    """onnx shape inference from the graph alone (stored value_info dropped first)."""
    import onnx

    return onnx.shape_inference.infer_shapes(without_value_info(model), data_prop=data_prop)


def infer_symbolic(model: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX Runtime's symbolic shape inference (sympy): dims as expressions of the symbolic inputs.

    Unlike onnx's data propagation it simplifies arithmetic, so a Reshape target (B, 64, -1) on a
    (B, 64, 40, 40) input gives (B, 64, 1600): what folding runtime-computed shapes needs.
    """
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    return SymbolicShapeInference.infer_shapes(without_value_info(model), auto_merge=True)


def shape_map(model: onnx.ModelProto) -> dict[str, list[Dim] | None]:
    """Every tensor with type information -> its dims (inputs, outputs, value_info, initializers)."""
    g = model.graph
    out = {v.name: dims(v) for v in [*g.input, *g.value_info, *g.output]}
    out.update({i.name: list(i.dims) for i in g.initializer})
    return out


def unknown_conv_channels(model: onnx.ModelProto, data_prop: bool = False) -> list[tuple[str, list[Dim] | None]]:
    """Conv nodes whose input channel dim is not a known int after onnx shape inference.

    TensorRT (and any backend that checks groups against channels at build time) rejects these
    (field notes, case 3). Returns (node name, inferred input dims).
    """
    shapes = shape_map(infer(model, data_prop))
    bad = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose"):
            d = shapes.get(node.input[0])
            if d is None or len(d) < 2 or not isinstance(d[1], int) or d[1] <= 0:
                bad.append((node.name or node.output[0], d))
    return bad


def constant_names(model: onnx.ModelProto) -> set[str]:
    """Tensors whose value is fixed in the graph: initializers and Constant outputs."""
    g = model.graph
    names = {i.name for i in g.initializer} - {i.name for i in g.input}
    return names | {o for n in g.node if n.op_type == "Constant" for o in n.output}


def foldable_nodes(model: onnx.ModelProto) -> list[str]:
    """Non-Constant, deterministic nodes whose every input is a constant: what folding removes."""
    const = constant_names(model)
    out = []
    for node in model.graph.node:
        if node.op_type == "Constant" or node.op_type in RANDOM_OPS or node.domain not in ("", "ai.onnx"):
            continue
        if any(a.type in (5, 10) for a in node.attribute):  # GRAPH / GRAPHS: control flow, not folded here
            continue
        if all(not i or i in const for i in node.input):
            out.append(node.name or node.output[0])
    return out


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Node count per op type (top-level graph), for manifests and before/after comparisons."""
    return dict(Counter(n.op_type for n in model.graph.node))


def image_input(model: onnx.ModelProto, recipe: Recipe | None = None) -> onnx.ValueInfoProto:
    """The image input: the one the recipe names, else the first graph input that is not an initializer."""
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    wanted = recipe.input.name if recipe is not None else None
    for value in inputs:
        if wanted is None or value.name == wanted:
            return value
    from recipekit.core.errors import RecipeKitError

    raise RecipeKitError(f"graph has no input {wanted!r}; inputs: {[i.name for i in inputs]}")


def blank_inputs(model: onnx.ModelProto, recipe: Recipe, value: int = 0) -> dict[str, np.ndarray]:
    """Feeds with a blank image (batch 1, export size): the input on which NMS keeps nothing."""
    from recipekit.onnx.preprocess import blank_tensor

    x = blank_tensor(tuple(recipe.export.imgsz), recipe.input.preprocess, value, recipe.input.dtype)
    return {image_input(model, recipe).name: x}


class ZeroSized(NamedTuple):
    """A tensor that came out empty: its name, producing op type, shape and consuming op types."""

    name: str
    op: str
    shape: tuple[int, ...]
    consumers: tuple[str, ...]


def zero_sized_tensors(model: onnx.ModelProto | Path, feeds: dict[str, Any]) -> list[ZeroSized]:
    """Run ONNX Runtime with every intermediate as an output; list the zero-sized ones."""
    import onnx

    from recipekit.onnx.runtime import ort_with_all_outputs

    proto = onnx.load(str(model)) if isinstance(model, Path) else model
    producer = {o: n.op_type for n in proto.graph.node for o in n.output}
    consumers: dict[str, list[str]] = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    with tempfile.TemporaryDirectory(prefix="recipekit-zero-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(proto, str(path))
        runner = ort_with_all_outputs(path)
        names = [o.name for o in runner.session.get_outputs()]
        values = runner.session.run(names, feeds)
    return [
        ZeroSized(n, producer.get(n, "graph-input"), tuple(v.shape), tuple(consumers.get(n, ())))
        for n, v in zip(names, values, strict=True)
        if getattr(v, "size", 1) == 0
    ]


VOLATILE_METADATA = ("date",)


def drop_volatile_metadata(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop metadata that makes two exports of the same model differ (Ultralytics' export date)."""
    keep = [p for p in model.metadata_props if p.key not in VOLATILE_METADATA]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    return model


def concretize_output_dims(model: onnx.ModelProto) -> dict[str, list[Dim]]:
    """Make symbolic graph-output dims that shape inference proves fixed concrete ints, in place.

    Exporters name every output dim they cannot trace to an input axis (`Concatoutput0_dim_1`) even
    when it is a constant (the 84 channels of a YOLO head under a dynamic batch). onnx's inference
    (with data propagation) runs first, then ONNX Runtime's symbolic inference, which simplifies
    arithmetic on shapes; a dim becomes an int only when one of them infers an int for it. Dims
    tied to a dynamic input axis stay symbolic. Returns output name -> dims for each changed output.
    """
    declared = {o.name: o for o in model.graph.output}
    unknown = {n: [i for i, d in enumerate(dims(v) or []) if _unproven(d)] for n, v in declared.items()}
    changed: dict[str, list[Dim]] = {}
    for inferred in _inferred_outputs(model, unknown):
        for name, idx in unknown.items():
            got = inferred.get(name)
            if not got or len(got) != len(dims(declared[name]) or []):
                continue
            for i in [i for i in idx if isinstance(got[i], int) and got[i] > 0]:
                declared[name].type.tensor_type.shape.dim[i].Clear()
                declared[name].type.tensor_type.shape.dim[i].dim_value = got[i]
                idx.remove(i)
                changed[name] = dims(declared[name])  # type: ignore[assignment]
    return changed


SYMBOLIC_MAX_NODES = 1500
"""ONNX Runtime's symbolic inference takes seconds on a YOLO head and many minutes on torchvision's
R-CNN graphs: beyond this size only onnx's own inference (with data propagation) runs."""
AUTO_DIM = re.compile(r".+_dim_\d+$")
"""torch.onnx's name for an output dim it could not trace to an input axis (`Concatoutput0_dim_1`)."""


def _unproven(d: Dim) -> bool:
    """A dim nobody declared: unknown, or a name the exporter made up. Declared names (an exporter's
    dynamic axes: batch, height, detections) are dynamic on purpose and never replaced."""
    return d is None or (isinstance(d, int) and d <= 0) or (isinstance(d, str) and bool(AUTO_DIM.match(d)))


def _inferred_outputs(model: onnx.ModelProto, unknown: dict[str, list[int]]) -> Iterator[dict[str, list[Dim] | None]]:
    """Output dims as onnx's inference, then (while some stay unproven) ONNX Runtime's slower symbolic
    inference, see them; either may fail on a graph, which then proves nothing.

    Inference runs on a copy whose outputs declare no shape, so a declared symbol cannot mask what
    the graph implies."""
    if not any(unknown.values()):
        return
    bare = without_value_info(model)
    for out in bare.graph.output:
        out.type.tensor_type.ClearField("shape")
    runs = [lambda m: infer(m, data_prop=True)]
    if len(model.graph.node) <= SYMBOLIC_MAX_NODES:
        runs.append(infer_symbolic)
    for run in runs:
        if not any(unknown.values()):
            return
        try:
            out = run(bare)
        except Exception:  # noqa: BLE001 - an inference that cannot handle the graph proves nothing
            continue
        if out is not None:
            yield {o.name: dims(o) for o in out.graph.output}


def concretize_file(path: Path) -> dict[str, list[Dim]]:
    """`concretize_output_dims` on an ONNX file, rewritten only when a dim changed (external data kept)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    changed = concretize_output_dims(model)
    if changed:
        onnx.save(model, str(path))
    return changed
