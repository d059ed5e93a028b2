"""empty-input: a blank image; runtime errors fail, zero-sized intermediates are listed (or fail)."""

from __future__ import annotations

import pytest
from helpers.gate_models import context, faster_rcnn_export, recipe, save_graph, tensor_info, yolo_export
from onnx import TensorProto, helper

from recipekit.gates.empty_input import EmptyInput, EmptyInputConfig


def _i64(name: str, values: list[int]):
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)


def keep_then_pad_graph(out_len: int = 10):
    """NMS in miniature: keep values > 0.5 (NonZero, Gather), pad to 10 (Pad) as F.pad does."""
    consts = [
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
        _i64("flat", [-1]),
        _i64("ten", [10]),
        _i64("zeros3", [0, 0, 0]),
    ]
    nodes = [
        helper.make_node("Reshape", ["X", "flat"], ["f"]),
        helper.make_node("Greater", ["f", "half"], ["m"]),
        helper.make_node("NonZero", ["m"], ["nz"]),
        helper.make_node("Squeeze", ["nz"], ["idx"]),
        helper.make_node("Gather", ["f", "idx"], ["kept"]),
        helper.make_node("Shape", ["kept"], ["k"]),
        helper.make_node("Sub", ["ten", "k"], ["rest"]),
        helper.make_node("Concat", ["zeros3", "rest"], ["pads"], axis=0),
        helper.make_node("Unsqueeze", ["kept", "ax0"], ["kept2"]),
        helper.make_node("Pad", ["kept2", "pads"], ["Y"]),
    ]
    consts.append(_i64("ax0", [0]))
    return save_graph(
        nodes, [tensor_info("X", [1, 3, 32, 32])], [tensor_info("Y", [1, out_len])], f"keep-pad-{out_len}", consts
    )


def traced_reshape_graph():
    """Kept values reshaped to a size baked at trace time ([3, 4]): Faster R-CNN's {-1,4} error in miniature."""
    consts = [helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]), _i64("flat", [-1]), _i64("traced", [3, 4])]
    nodes = [
        helper.make_node("Reshape", ["X", "flat"], ["f"]),
        helper.make_node("Greater", ["f", "half"], ["m"]),
        helper.make_node("NonZero", ["m"], ["nz"]),
        helper.make_node("Squeeze", ["nz"], ["idx"]),
        helper.make_node("Gather", ["f", "idx"], ["kept"]),
        helper.make_node("Reshape", ["kept", "traced"], ["Y"]),
    ]
    return save_graph(nodes, [tensor_info("X", [1, 3, 32, 32])], [tensor_info("Y", [3, 4])], "traced-reshape", consts)


def check(path, **cfg):
    rec = recipe(imgsz=(32, 32), batch=(1, 1, 1))
    return EmptyInput(EmptyInputConfig(**cfg)).check(context(rec, path, None))


def test_zero_sized_intermediates_listed_with_their_ops():
    result = check(keep_then_pad_graph())
    assert result.status == "passed", result.failures
    listed = {z["tensor"]: z for z in result.figures["32x32"]["zero_sized_intermediates"]}
    assert {"nz", "idx", "kept", "kept2"} <= set(listed)
    assert listed["kept2"]["consumers"] == ["Pad"] and listed["kept"]["producer"] == "Gather"
    assert result.figures["32x32"]["outputs"] == {"Y": [1, 10]}
    failed = check(keep_then_pad_graph(), zero_sized="fail")
    assert failed.status == "failed" and failed.failures[-1].startswith("zero_sized_intermediates ")
    assert failed.failures[-1].endswith("> 0 (zero_sized: fail)")


def test_runtime_error_on_blank_fails_naming_it():
    result = check(traced_reshape_graph())
    assert result.status == "failed"
    assert result.failures[0].startswith("blank 32x32: the artifact raised:")
    assert "Reshape" in result.failures[0]


def test_output_shape_other_than_declared_fails():
    result = check(keep_then_pad_graph(out_len=7))
    assert result.status == "failed"
    assert "output Y: shape [1, 10] != declared [1, 7]" in result.failures[0]


def test_config_errors():
    with pytest.raises(ValueError, match="zero_sized"):
        EmptyInputConfig(zero_sized="warn")
    with pytest.raises(ValueError, match="value"):
        EmptyInputConfig(value=300)


@pytest.mark.slow
def test_yolo11n_pose_nms_lists_zero_sized_tensors_feeding_pad():
    path, _, _ = yolo_export("yolo11n-pose.yaml", nms=True)
    rec = recipe(imgsz=(256, 256), batch=(1, 1, 4), nms=True)
    result = EmptyInput(EmptyInputConfig()).check(context(rec, path, None))
    assert result.status == "passed", result.failures
    zeros = result.figures["256x256"]["zero_sized_intermediates"]
    assert result.figures["zero_sized_intermediates"] == len(zeros) > 0
    assert any(c.startswith("Pad") for z in zeros for c in z["consumers"])
    assert result.figures["256x256"]["outputs"] == {"output0": [1, 300, 57]}
    web = EmptyInput(EmptyInputConfig(zero_sized="fail")).check(context(rec, path, None))
    assert web.status == "failed" and web.failures[0].startswith(f"zero_sized_intermediates {len(zeros)} > 0")


@pytest.mark.slow
def test_yolo11n_pose_nms_with_fixed_shape_nms_has_none():
    path, _, _ = yolo_export("yolo11n-pose.yaml", nms=True, fix=True)
    rec = recipe(imgsz=(256, 256), batch=(1, 1, 4), nms=True)
    result = EmptyInput(EmptyInputConfig(zero_sized="fail")).check(context(rec, path, None))
    assert result.status == "passed", result.failures
    assert result.figures["zero_sized_intermediates"] == 0
    assert result.figures["256x256"]["outputs"] == {"output0": [1, 300, 57]}


@pytest.fixture(scope="module")
def faster_rcnn():
    return faster_rcnn_export()


@pytest.mark.slow
def test_faster_rcnn_fails_without_zero_safe_reshape(faster_rcnn):
    rec, raw, _, _ = faster_rcnn
    result = EmptyInput(EmptyInputConfig()).check(context(rec, raw, None))
    assert result.status == "failed"
    assert result.failures[0].startswith("blank 320x320: the artifact raised:")
    assert "Reshape" in result.failures[0] and "requested shape:{0,-1}" in result.failures[0]


@pytest.mark.slow
def test_faster_rcnn_passes_with_zero_safe_reshape(faster_rcnn):
    rec, _, fixed, _ = faster_rcnn
    result = EmptyInput(EmptyInputConfig()).check(context(rec, fixed, None))
    assert result.status == "passed", result.failures
    assert result.figures["320x320"]["outputs"] == {"boxes": [0, 4], "scores": [0], "labels": [0]}
    assert set(result.figures["320x320"]["zero_sized_outputs"]) == {"boxes", "scores", "labels"}
