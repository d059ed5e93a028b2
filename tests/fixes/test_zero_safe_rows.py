"""zero-safe-rows on hand-made RoI-head-like graphs: NonZero rows (none on a blank image) -> Gemm -> Softmax or
a row-wise ReduceMax (the native WebGPU EP fails on their empty input; tests/targets/test_webgpu_localize.py
measures that in Chromium). Here: which nodes it picks, identical ONNX Runtime results on empty and full
inputs, what it leaves, and webgpu-lint naming the node and this fix on the native bundle only."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import webgpu_models as models
from helpers.fix_models import applied, run_ort
from onnx import TensorProto, helper

from recipekit.fixes import FIXES
from recipekit.fixes.zero_safe_rows import ZeroSafeRows
from recipekit.targets.webgpu.lint import WebGpuLint, WebGpuLintConfig

FEEDS = {
    "blank": np.zeros((1, 3, 32, 32), np.float32),
    "full": np.random.default_rng(1).random((1, 3, 32, 32), dtype=np.float32),
}


def test_registered_for_the_native_bundles():
    assert FIXES.get("zero-safe-rows") is ZeroSafeRows and ZeroSafeRows.bundles == ("webgpu", "jspi")


def test_webgpu_lints_empty_batch_kernels_are_the_ops_the_zero_safe_fixes_repair():
    """Two plugin families keep the same measurement (they may not import each other): the kernels
    webgpu-lint predicts to fail on an empty input, per kernel table, and the ops the fixes it names
    repair on those bundles. One list extended without the other is caught here."""
    from recipekit.fixes.zero_safe_rows import OPS
    from recipekit.targets.webgpu.graph import JSEP_ZERO_FRAGILE, NATIVE_ZERO_FRAGILE

    assert NATIVE_ZERO_FRAGILE == set(OPS)
    assert JSEP_ZERO_FRAGILE == {FIXES.get(name).op for name in ("zero-safe-gathernd", "zero-safe-gemm")}
    assert {FIXES.get(name).bundles for name in ("zero-safe-gathernd", "zero-safe-gemm")} == {("jsep",)}


@pytest.mark.parametrize("then", ["Softmax", "ReduceMax"])
def test_results_are_unchanged_empty_and_full(tmp_path, then):
    src = models.rows_into_gemm(tmp_path / "m.onnx", then=then)
    check, fixed = applied(ZeroSafeRows(), src)
    assert "/head" in check.why, check
    for name, x in FEEDS.items():
        (before,) = run_ort(src, {"images": x})
        (after,) = run_ort(fixed, {"images": x})
        assert after.shape == before.shape and (name != "blank" or before.shape[0] == 0)
        np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)


def test_a_global_reduction_is_left_and_said_so(tmp_path):
    model = onnx.load(str(models.rows_into_gemm(tmp_path / "m.onnx")))
    model.graph.node.append(helper.make_node("ReduceMax", ["output0"], ["m"], name="/all", keepdims=0))
    model.graph.output.append(helper.make_tensor_value_info("m", TensorProto.FLOAT, []))
    check = ZeroSafeRows().check(model, None)
    assert check.status == "not-needed" and "global reduction" in check.why and "/all" in check.why


def lint(path, bundle: str) -> dict:
    ctx = models.gate_context(path, models.recipe(32, bundle=bundle), bundle)
    return WebGpuLint(WebGpuLintConfig()).check(ctx).to_json()


def test_webgpu_lint_names_the_softmax_and_the_fix_on_the_native_bundle_only(tmp_path):
    src = models.rows_into_gemm(tmp_path / "m.onnx", then="Softmax")
    native = lint(src, "webgpu")
    assert native["status"] == "failed"
    (failure,) = [f for f in native["failures"] if "Softmax (/head)" in f]
    assert "native WebGPU EP fails" in failure and "zero-safe-rows" in failure
    jsep = lint(src, "jsep")  # JSEP takes an empty Softmax; its Gemm is what fails there
    assert not [f for f in jsep["failures"] if "Softmax" in f] and any("/fc/Gemm" in f for f in jsep["failures"])
    _, fixed = applied(ZeroSafeRows(), src)
    onnx.save(fixed, str(tmp_path / "fixed.onnx"))
    assert lint(tmp_path / "fixed.onnx", "webgpu")["status"] == "passed"


def rois_into_conv_head(path):
    """images -> Greater -> NonZero: (K, 4) rows, tiled and reshaped to (K, 4, 4, 4) "RoI features" ->
    Conv 3x3 -> Relu -> ConvTranspose 2x2/2 -> MaxPool 2x2 -> /head/Conv 1x1 (K = 0 on a blank image), as
    torchvision's mask and keypoint heads run convolutions over every RoI."""
    rng = np.random.default_rng(0)
    w = lambda name, *shape: onnx.numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)  # noqa: E731
    nodes = [
        helper.make_node("Greater", ["images", "half"], ["mask"], name="/Greater"),
        helper.make_node("NonZero", ["mask"], ["idx"], name="/NonZero"),
        helper.make_node("Transpose", ["idx"], ["rows_i"], name="/Transpose", perm=[1, 0]),
        helper.make_node("Cast", ["rows_i"], ["rows"], name="/Cast", to=TensorProto.FLOAT),
        helper.make_node("Tile", ["rows", "rep"], ["tiled"], name="/Tile"),
        helper.make_node("Reshape", ["tiled", "shape4"], ["x"], name="/Reshape"),
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="/head/conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="/head/relu"),
        helper.make_node(
            "ConvTranspose", ["r1", "w2", "b2"], ["up"], name="/head/up", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("MaxPool", ["up"], ["p"], name="/head/pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w3"], ["output0"], name="/head/Conv", kernel_shape=[1, 1]),
    ]
    inits = [
        onnx.numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        onnx.numpy_helper.from_array(np.array([1, 16], np.int64), "rep"),
        onnx.numpy_helper.from_array(np.array([-1, 4, 4, 4], np.int64), "shape4"),
        w("w1", 8, 4, 3, 3), w("b1", 8), w("w2", 8, 6, 2, 2), w("b2", 6), w("w3", 2, 6, 1, 1),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "conv_head", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["rows", 2, 4, 4])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_per_roi_convolutions_get_a_sentinel_row_and_results_are_unchanged(tmp_path):
    src = rois_into_conv_head(tmp_path / "m.onnx")
    check, fixed = applied(ZeroSafeRows(), src)
    assert check.status == "applies" and "4 " in check.why, check  # conv1, up, pool, Conv; Relu takes it empty
    for name, x in FEEDS.items():
        (before,) = run_ort(src, {"images": x})
        (after,) = run_ort(fixed, {"images": x})
        assert after.shape == before.shape and (name != "blank" or before.shape[0] == 0)
        np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)
    native = lint(src, "webgpu")
    assert native["status"] == "failed" and any("Conv (/head/conv1)" in f for f in native["failures"]), native
    onnx.save(fixed, str(tmp_path / "fixed.onnx"))
    assert lint(tmp_path / "fixed.onnx", "webgpu")["status"] == "passed"
    assert not [f for f in lint(src, "jsep")["failures"] if "Conv" in f]  # JSEP runs them on an empty batch
