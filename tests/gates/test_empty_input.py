"""empty-input: a blank image; runtime errors fail, zero-sized intermediates are listed (or fail)."""

from __future__ import annotations

import onnx
import pytest
from helpers.gate_models import (
    POSE_NMS,
    TV_KINDS,
    context,
    faster_rcnn_export,
    golden_from,
    recipe,
    save_graph,
    tensor_info,
    yolo_export,
)
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


def check(path, kinds=None, **cfg):
    """The gate with golden probes from ONNX Runtime running the same graph (the reference here)."""
    from recipekit.onnx.runtime import OrtRunner

    rec = recipe(imgsz=(32, 32), batch=(1, 1, 1))
    try:
        golden = golden_from(OrtRunner(path).run_one, rec, [o.name for o in onnx.load(str(path)).graph.output], True)
    except Exception:  # noqa: BLE001 - a graph that fails on the samples: no reference, as a broken source
        golden = None
    return EmptyInput(EmptyInputConfig(**cfg)).check(context(rec, path, golden, kinds))


def constant_head(score: float):
    """A raw head (1, 5, 4): cxcywh box + one class score per anchor, the same whatever the input."""
    values = [10.0] * 16 + [score] * 4
    consts = [helper.make_tensor("c", TensorProto.FLOAT, [1, 5, 4], values), helper.make_tensor("z", 1, [], [0.0])]
    nodes = [
        helper.make_node("ReduceMean", ["X"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "z"], ["zero"]),
        helper.make_node("Add", ["c", "zero"], ["Y"]),
    ]
    return save_graph(
        nodes, [tensor_info("X", [1, 3, 32, 32])], [tensor_info("Y", [1, 5, 4])], f"const-{score}", consts
    )


HEAD = {"Y": {"kind": "raw_head", "groups": [{"role": "box", "start": 0, "stop": 4, "format": "cxcywh"},
                                             {"role": "class_scores", "start": 4, "stop": 5}]}}  # fmt: skip


def test_a_model_that_detects_on_every_blank_input_is_not_exercised_never_passed():
    result = check(constant_head(0.9), HEAD)
    assert result.status == "failed" and result.message.startswith("not exercised at 32x32")
    assert result.figures["exercised"] is False
    assert set(result.figures["32x32"]["probes"].values()) == {4} and len(result.figures["32x32"]["probes"]) >= 5
    relaxed = check(constant_head(0.9), HEAD, require=False)
    assert relaxed.status == "skipped" and "not exercised" in relaxed.message
    found = check(constant_head(0.01), HEAD)  # scores under the raw-head threshold 0.25: zero detections
    assert found.status == "passed", found.failures
    assert found.figures["32x32"]["input"] == "blank(0)" and found.figures["exercised"]


def test_undeclared_outputs_are_exercised_by_a_zero_sized_tensor():
    """Nothing to count: the black image exercises the empty path when a tensor comes out zero-sized."""
    result = check(keep_then_pad_graph())
    assert result.status == "passed" and result.figures["exercised"], result.failures
    assert result.figures["32x32"]["input"] is None  # no reference count: the black image ran


def test_fixed_size_outputs_without_counts_are_not_applicable():
    """A model whose outputs carry no count (no detections declared, no data-dependent op) has no empty case."""
    result = check(constant_head(0.9))
    assert result.status == "not applicable" and "no output carries a count" in result.message
    assert not result.failures
    classes = {"Y": {"kind": "dense_map", "classes": "binary", "channel_axis": 1}}
    assert check(constant_head(0.9), classes).status == "not applicable"


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
    with pytest.raises(ValueError, match="score"):
        EmptyInputConfig(score=1.5)


@pytest.mark.slow
def test_yolo11n_pose_nms_lists_zero_sized_tensors_feeding_pad():
    path, forward, names = yolo_export("yolo11n-pose.yaml", nms=True)
    rec = recipe(imgsz=(256, 256), batch=(1, 1, 4), nms=True)
    ctx = context(rec, path, golden_from(forward, rec, names, probes=True), POSE_NMS)
    result = EmptyInput(EmptyInputConfig()).check(ctx)
    assert result.status == "passed", result.failures
    zeros = result.figures["256x256"]["zero_sized_intermediates"]
    assert result.figures["zero_sized_intermediates"] == len(zeros) > 0
    assert any(c.startswith("Pad") for z in zeros for c in z["consumers"])
    assert result.figures["256x256"]["outputs"] == {"output0": [1, 300, 57]}
    web = EmptyInput(EmptyInputConfig(zero_sized="fail")).check(ctx)
    assert web.status == "failed" and web.failures[0].startswith(f"zero_sized_intermediates {len(zeros)} > 0")


@pytest.mark.slow
def test_yolo11n_pose_nms_with_fixed_shape_nms_has_none():
    path, forward, names = yolo_export("yolo11n-pose.yaml", nms=True, fix=True)
    rec = recipe(imgsz=(256, 256), batch=(1, 1, 4), nms=True)
    ctx = context(rec, path, golden_from(forward, rec, names, probes=True), POSE_NMS)
    result = EmptyInput(EmptyInputConfig(zero_sized="fail")).check(ctx)
    assert result.status == "passed", result.failures
    assert result.figures["zero_sized_intermediates"] == 0
    assert result.figures["256x256"]["outputs"] == {"output0": [1, 300, 57]}


@pytest.fixture(scope="module")
def faster_rcnn():
    return faster_rcnn_export()


@pytest.mark.slow
def test_faster_rcnn_fails_without_zero_safe_reshape(faster_rcnn):
    rec, raw, _, golden = faster_rcnn
    result = EmptyInput(EmptyInputConfig()).check(context(rec, raw, golden, TV_KINDS))
    assert result.status == "failed"
    assert result.failures[0].startswith("blank 320x320: the artifact raised:")
    assert "Reshape" in result.failures[0] and "requested shape:{0,-1}" in result.failures[0]


@pytest.mark.slow
def test_faster_rcnn_passes_with_zero_safe_reshape(faster_rcnn):
    rec, _, fixed, golden = faster_rcnn
    result = EmptyInput(EmptyInputConfig()).check(context(rec, fixed, golden, TV_KINDS))
    assert result.status == "passed", result.failures
    assert result.figures["320x320"]["outputs"] == {"boxes": [0, 4], "scores": [0], "labels": [0]}
    assert set(result.figures["320x320"]["zero_sized_outputs"]) == {"boxes", "scores", "labels"}
