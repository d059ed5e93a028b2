"""zero-safe-reshape on small hand-built graphs: the torchvision `reshape(box_sum, -1)` pattern.

The real Faster R-CNN case (ONNX Runtime's `{0,364} -> {0,-1}` error on a blank image) is tested in
tests/sources/test_torchvision.py, where the export exists.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from recipekit.fixes.zero_safe_reshape import ZeroSafeReshape


def _rows_graph() -> onnx.ModelProto:
    """X (N, 12) -> Reshape(X, [N, -1]) -> Reshape(., [N, -1, 4]): N read from X's shape at run time."""
    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
        numpy_helper.from_array(np.array([4], np.int64), "four"),
    ]
    nodes = [
        helper.make_node("Shape", ["X"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Concat", ["n", "minus_one"], ["target"], axis=0, name="concat"),
        helper.make_node("Reshape", ["X", "target"], ["rows"], name="reshape"),
        helper.make_node("Concat", ["n", "minus_one", "four"], ["target3"], axis=0, name="concat3"),
        helper.make_node("Reshape", ["rows", "target3"], ["Y"], name="reshape3"),
    ]
    graph = helper.make_graph(
        nodes,
        "rows",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 12])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 3, 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"]).run(
        None, {"X": x}
    )[0]


def test_zero_rows_fail_before_and_reshape_after() -> None:
    model, fix = _rows_graph(), ZeroSafeReshape()
    with pytest.raises(Exception, match="reshape"):
        _run(model, np.zeros((0, 12), np.float32))
    assert fix.check(model, None).status == "applies"
    fixed = fix.apply(model, None)
    onnx.checker.check_model(fixed)
    assert _run(fixed, np.zeros((0, 12), np.float32)).shape == (0, 3, 4)
    x = np.random.default_rng(0).random((5, 12), dtype=np.float32)
    np.testing.assert_array_equal(_run(fixed, x), _run(model, x))
    guarantee = fix.guarantee(fixed, None)
    assert guarantee.ok, guarantee.detail


def test_input_unchanged_and_idempotent() -> None:
    model, fix = _rows_graph(), ZeroSafeReshape()
    before = model.SerializeToString()
    fixed = fix.apply(model, None)
    assert model.SerializeToString() == before
    assert fix.check(fixed, None).status == "not-needed"
    assert fix.apply(fixed, None) == fixed
    # the shared -1 constant is untouched: the fix adds private copies
    assert numpy_helper.to_array(next(i for i in fixed.graph.initializer if i.name == "minus_one")).tolist() == [-1]


def test_static_targets_not_needed() -> None:
    inits = [numpy_helper.from_array(np.array([-1, 4], np.int64), "target")]
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["X", "target"], ["Y"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 12])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    check = ZeroSafeReshape().check(model, None)
    assert check.status == "not-needed", check.why


def test_copied_zero_with_minus_one() -> None:
    """A constant target [0, -1] copies dim 0: the same ambiguity when that dim is 0."""
    inits = [numpy_helper.from_array(np.array([0, -1], np.int64), "target")]
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["X", "target"], ["Y"], name="r")],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    fixed = ZeroSafeReshape().apply(model, None)
    assert _run(fixed, np.zeros((0, 3, 4), np.float32)).shape == (0, 12)
