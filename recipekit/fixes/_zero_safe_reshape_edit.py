"""The graph edit of zero-safe-reshape: a private copy of one Reshape's target with -1 made static.

The target (or the Concat part holding the -1) may be shared with other nodes, so it is never
changed in place: the Reshape gets a new initializer, or a new Concat inserted just before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx


def _values(model: onnx.ModelProto, name: str) -> list[int] | None:
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            return [int(x) for x in numpy_helper.to_array(init).reshape(-1)]
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output[0] == name and n.attribute[0].name == "value":
            return [int(x) for x in numpy_helper.to_array(n.attribute[0].t).reshape(-1)]
    return None


def _unique(model: onnx.ModelProto, base: str) -> str:
    taken = {i.name for i in model.graph.initializer} | {o for n in model.graph.node for o in n.output}
    i = 0
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"


def _static_copy(model: onnx.ModelProto, values: list[int], value: int, base: str) -> str:
    import numpy as np
    from onnx import numpy_helper

    name = _unique(model, base)
    fixed = np.array([value if v == -1 else v for v in values], dtype=np.int64)
    model.graph.initializer.append(numpy_helper.from_array(fixed, name))
    return name


def set_minus_one(model: onnx.ModelProto, reshape: onnx.NodeProto, value: int) -> None:
    """Rewire `reshape` to a target whose -1 is `value`."""
    from onnx import helper

    base = (reshape.name or reshape.output[0]).strip("/").replace("/", "_") + "_static_shape"
    target = reshape.input[1]
    values = _values(model, target)
    if values is not None:
        reshape.input[1] = _static_copy(model, values, value, base)
        return
    concat = next(n for n in model.graph.node if target in n.output)
    inputs = list(concat.input)
    for i, part in enumerate(inputs):
        part_values = _values(model, part)
        if part_values is not None and -1 in part_values:
            inputs[i] = _static_copy(model, part_values, value, base)
            break
    out = _unique(model, base + "_concat")
    node = helper.make_node("Concat", inputs, [out], name=out, axis=helper.get_attribute_value(concat.attribute[0]))
    position = list(model.graph.node).index(reshape)
    model.graph.node.insert(position, node)
    reshape.input[1] = out
