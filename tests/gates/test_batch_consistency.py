"""batch-consistency: fails on real graphs whose items interfere across the batch, passes on clean ones."""

from __future__ import annotations

import pytest
from helpers.gate_models import context, golden_from, recipe, save_graph, tensor_info, yolo_export
from onnx import TensorProto, helper

from recipekit.gates.base import GateResult
from recipekit.gates.batch_consistency import BatchConsistency, BatchConsistencyConfig, batch_sizes
from recipekit.recipe.schema import Batch

SHAPE = (32, 32)


def mixing_graph(batch_dim) -> object:
    """Y = X - mean over the batch axis: each item's output depends on the other items."""
    nodes = [
        helper.make_node("ReduceMean", ["X"], ["M"], axes=[0], keepdims=1),
        helper.make_node("Sub", ["X", "M"], ["Y"]),
    ]
    return save_graph(
        nodes,
        [tensor_info("X", [batch_dim, 3, *SHAPE])],
        [tensor_info("Y", [batch_dim, 3, *SHAPE])],
        f"mix-{batch_dim}",
    )


def reshape_mixing_graph() -> object:
    """A reshape that folds the batch axis into rows that are then centred (items leak into each other)."""
    shape_a = helper.make_tensor("sa", TensorProto.INT64, [2], [3, -1])
    shape_b = helper.make_tensor("sb", TensorProto.INT64, [4], [-1, 3, *SHAPE])
    nodes = [
        helper.make_node("Reshape", ["X", "sa"], ["R"]),
        helper.make_node("ReduceMean", ["R"], ["M"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["R", "M"], ["S"]),
        helper.make_node("Reshape", ["S", "sb"], ["Y"]),
    ]
    return save_graph(
        nodes,
        [tensor_info("X", ["b", 3, *SHAPE])],
        [tensor_info("Y", ["b", 3, *SHAPE])],
        "reshape-mix",
        [shape_a, shape_b],
    )


def clean_graph(batch_dim) -> object:
    """Y = softmax over the channel axis: items independent."""
    nodes = [helper.make_node("Softmax", ["X"], ["Y"], axis=1)]
    return save_graph(
        nodes,
        [tensor_info("X", [batch_dim, 3, *SHAPE])],
        [tensor_info("Y", [batch_dim, 3, *SHAPE])],
        f"clean-{batch_dim}",
    )


def run(path, batch=(1, 2, 4), dynamic_batch=None, **cfg) -> GateResult:
    rec = recipe(imgsz=SHAPE, batch=batch, dynamic_batch=dynamic_batch)
    golden = golden_from(lambda x: [x], rec, ["Y"])  # the inputs are what this gate uses
    return BatchConsistency(BatchConsistencyConfig(**cfg)).check(context(rec, path, golden))


def test_batch_sizes_min_opt_max_and_one_between():
    assert batch_sizes(Batch(min=1, opt=2, max=4)) == [1, 2, 3, 4]
    assert batch_sizes(Batch(min=1, opt=1, max=8)) == [1, 5, 8]
    assert batch_sizes(Batch(min=2, opt=2, max=3)) == [2, 3]


@pytest.mark.parametrize("make", [lambda: mixing_graph("b"), reshape_mixing_graph], ids=["batch-mean", "reshape"])
def test_fails_when_items_interfere(make):
    result = run(make())
    assert result.status == "failed"
    assert result.figures["sizes"] == [1, 2, 3, 4]
    assert result.failures[0].startswith("Y at batch 2 item 0: ")
    assert "beyond atol=0.001 and rtol=0.001" in result.failures[0]
    assert {r["batch"] for r in result.figures["rows"]} == {2, 3, 4}


def test_passes_when_items_are_independent():
    result = run(clean_graph("b"))
    assert result.status == "passed", result.failures
    assert len(result.figures["rows"]) == 2 + 3 + 4
    assert result.figures["outputs"]["Y"]["max_abs"] < 1e-6


def test_static_batch_uses_uniform_batch_references():
    assert run(mixing_graph(4), batch=(4, 4, 4)).status == "failed"
    result = run(clean_graph(4), batch=(4, 4, 4))
    assert result.status == "passed" and result.figures["reference"] == "uniform batch"


def test_batch_one_only_is_not_applicable_with_the_reason():
    result = run(clean_graph("b"), batch=(1, 1, 1))
    assert result.status == "not applicable" and "batch 1 only" in result.message


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="atol"):
        BatchConsistencyConfig(atol=-1.0)
    with pytest.raises(ValueError, match="sizez"):
        BatchConsistencyConfig(sizez=[2])


@pytest.mark.slow
def test_yolo11n_seg_passes_at_batch_1_to_4():
    path, forward, names = yolo_export("yolo11n-seg.yaml")
    rec = recipe(imgsz=(256, 256), batch=(1, 2, 4))
    result = BatchConsistency(BatchConsistencyConfig()).check(context(rec, path, golden_from(forward, rec, names)))
    assert result.status == "passed", result.failures
    assert result.figures["sizes"] == [1, 2, 3, 4]
    assert {(r["batch"], r["output"]) for r in result.figures["rows"]} >= {(4, "output0"), (4, "output1")}
