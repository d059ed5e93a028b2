"""recipekit.onnx.util on tiny hand-built graphs (fast): the definitions fixes and gates share."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from recipekit.fixes import FIXES
from recipekit.onnx.util import foldable_nodes, unknown_conv_channels, zero_sized_tensors

OURS = [
    "shape-inference",
    "constant-folding",
    "onnxslim",
    "static-dims",
    "opset",
    "fixed-shape-nms",
    "static-reshape-channels",
]


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def conv_after_runtime_reshape():
    """x (B, 8, 4) -> Reshape to (Shape(x)[0], 8, 2, 2) computed at runtime -> Conv."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 8, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "i0"),
        numpy_helper.from_array(np.array([8, 2, 2], np.int64), "rest"),
        numpy_helper.from_array(np.ones((8, 8, 1, 1), np.float32), "w"),
    ]
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["b"]),
        helper.make_node("Concat", ["b", "rest"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
        helper.make_node("Conv", ["r", "w"], ["y"], name="conv"),
    ]
    return _model(nodes, [x], [y], inits)


def test_unknown_conv_channel_found_and_stale_value_info_ignored():
    model = conv_after_runtime_reshape()
    assert [name for name, _ in unknown_conv_channels(model)] == ["conv"]
    model.graph.value_info.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, ["B", 8, 2, 2]))
    assert [name for name, _ in unknown_conv_channels(model)] == ["conv"], "stored shapes are not trusted"


def test_zero_sized_tensor_after_nonzero():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [5])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, None)
    inits = [numpy_helper.from_array(np.array(0.5, np.float32), "t")]
    nodes = [
        helper.make_node("Greater", ["x", "t"], ["m"]),
        helper.make_node("NonZero", ["m"], ["idx"]),
        helper.make_node("Transpose", ["idx"], ["y"]),
    ]
    model = _model(nodes, [x], [y], inits)
    zero = zero_sized_tensors(model, {"x": np.zeros(5, np.float32)})
    assert sorted((z.name, z.op, z.shape, z.consumers) for z in zero) == [
        ("idx", "NonZero", (1, 0), ("Transpose",)),
        ("y", "Transpose", (0, 1), ()),
    ]
    assert zero_sized_tensors(model, {"x": np.ones(5, np.float32)}) == []


def test_foldable_nodes():
    model = conv_after_runtime_reshape()
    model.graph.node.insert(0, helper.make_node("Identity", ["w"], ["w2"], name="id"))
    assert foldable_nodes(model) == ["id"]


@pytest.mark.slow  # imports sympy for ONNX Runtime's symbolic shape inference
def test_static_reshape_channels_folds_the_toy_graph():
    from recipekit.fixes.static_reshape_channels import fold, foldable_reshapes

    model = conv_after_runtime_reshape()
    targets = foldable_reshapes(model)
    assert targets == {"reshape": [-1, 8, 2, 2]}
    fixed = fold(model, targets)
    assert unknown_conv_channels(fixed) == []
    assert {n.op_type for n in fixed.graph.node} == {"Reshape", "Conv"}, "the Shape chain is removed"
    onnx.checker.check_model(fixed)


def test_registry_names_and_config_descriptions():
    for name in OURS:
        cls = FIXES.get(name)
        assert cls.name == name and cls.stage in ("onnx", "source") and cls.summary
        for field_name, field in cls.Config.model_fields.items():
            assert field.description, f"{name}.{field_name} has no description"


def test_fixed_output_dims_made_concrete_dynamic_ones_kept() -> None:
    """x (B, 4): Concat(x, x) (B, 8) declared (B, 'Concaty_dim_1'); Reshape(x, Shape(x)): dim 1 is 4,
    dim 0 stays symbolic."""
    from recipekit.onnx.util import concretize_output_dims, dims

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "Concaty_dim_1"])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["Reshapez_dim_0", "Reshapez_dim_1"])
    nodes = [
        helper.make_node("Concat", ["x", "x"], ["y"], axis=1),
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Reshape", ["x", "s"], ["z"]),
    ]
    model = _model(nodes, [x], [y, z])
    changed = concretize_output_dims(model)
    assert changed == {"y": ["B", 8], "z": ["Reshapez_dim_0", 4]}
    assert [dims(o) for o in model.graph.output] == [["B", 8], ["Reshapez_dim_0", 4]]
    assert concretize_output_dims(model) == {}


def test_the_wire_header_reads_metadata_and_skips_a_huge_value(tmp_path) -> None:
    """metadata_props as onnx writes them, read without onnx; a value over 1 MB is left unread (None)."""
    import onnx

    from recipekit.onnx.wire import read_header

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4])
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [x], [helper.make_tensor_value_info("y", 1, ["B", 4])])
    for key, value in (("author", "Ultralytics"), ("vocab", "w" * (2 << 20)), ("date", "2026-12-07")):
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(tmp_path / "m.onnx"))
    header = read_header(tmp_path / "m.onnx")
    assert header.metadata == {"author": "Ultralytics", "vocab": None, "date": "2026-12-07"}
    assert [(t.name, t.dims) for t in header.outputs] == [("y", ["B", 4])]
