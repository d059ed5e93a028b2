"""split-grouped-conv on hand-made Conv graphs: which Convs it picks, identical ONNX Runtime results,
webgpu-lint naming the Conv; and in headless Chromium (slow) the upstream defect and its fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import webgpu_models as models
from onnx import TensorProto, helper, numpy_helper

from recipekit.fixes import FIXES
from recipekit.fixes.split_grouped_conv import SplitGroupedConv
from recipekit.targets.webgpu.lint import WebGpuLint, WebGpuLintConfig

HW = 32


def convs(path: Path, layers: list[tuple[int, int]], opset: int = 17) -> Path:
    """images (1, 3, HW, HW) through 3x3 Convs given as (output channels, group), with biases."""
    rng = np.random.default_rng(0)
    nodes, inits, x, c = [], [], "images", 3
    first = c
    for i, (out, group) in enumerate(layers):
        w = numpy_helper.from_array((rng.standard_normal((out, c // group, 3, 3)) * 0.2).astype(np.float32), f"w{i}")
        b = numpy_helper.from_array(rng.standard_normal(out).astype(np.float32), f"b{i}")
        inits += [w, b]
        y = "output0" if i == len(layers) - 1 else f"y{i}"
        nodes.append(
            helper.make_node(
                "Conv",
                [x, w.name, b.name],
                [y],
                name=f"/conv{i}",
                group=group,
                pads=[1] * 4,
                kernel_shape=[3, 3],
                strides=[1, 1],
                dilations=[1, 1],  # as exporters write them (JSEP needs them)
            )
        )
        x, c = y, out
    graph = helper.make_graph(
        nodes,
        "convs",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, first, HW, HW])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, c, HW, HW])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


# 3 -> 36, then 36 -> 36 in 2 groups of 18 (wrong on WebGPU), 36 depthwise, 36 -> 48 in 4 groups of 12 (right)
LAYERS = [(36, 1), (36, 2), (36, 36), (48, 4)]


def run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]


def fixed(src: Path, dest: Path) -> Path:
    fix = SplitGroupedConv()
    model = onnx.load(str(src))
    check = fix.check(model, None)
    assert check.status == "applies" and "/conv1" in check.why and "/conv2" not in check.why, check
    out = fix.apply(model, None)
    onnx.checker.check_model(out, full_check=True)
    assert fix.guarantee(out, None).ok and fix.check(out, None).status == "not-needed"
    groups = [next((a.i for a in n.attribute if a.name == "group"), 1) for n in out.graph.node if n.op_type == "Conv"]
    assert groups == [1, 1, 1, 36, 4]  # conv1 as two Convs; the depthwise and the aligned ones untouched
    onnx.save(out, str(dest))
    return dest


def test_registered():
    assert FIXES.get("split-grouped-conv") is SplitGroupedConv


@pytest.mark.parametrize("opset", [11, 17])
def test_results_are_unchanged(tmp_path, opset):
    src = convs(tmp_path / "m.onnx", LAYERS, opset)
    dest = fixed(src, tmp_path / "fixed.onnx")
    x = np.random.default_rng(1).standard_normal((1, 3, HW, HW)).astype(np.float32)
    np.testing.assert_allclose(run(dest, x), run(src, x), rtol=1e-5, atol=1e-5)


def test_aligned_groups_are_not_needed(tmp_path):
    model = onnx.load(str(convs(tmp_path / "m.onnx", [(32, 1), (32, 2), (32, 32), (48, 4)])))
    assert SplitGroupedConv().check(model, None).status == "not-needed"


def lint(path: Path, bundle: str) -> dict:
    ctx = models.gate_context(path, models.recipe(HW, nms=False, bundle=bundle), bundle)
    return WebGpuLint(WebGpuLintConfig()).check(ctx).to_json()


@pytest.mark.parametrize("bundle", ["jsep", "webgpu"])
def test_webgpu_lint_names_the_conv_on_both_bundles(tmp_path, bundle):
    src = convs(tmp_path / "m.onnx", LAYERS)
    out = lint(src, bundle)
    assert out["status"] == "failed"
    assert [w["node"] for w in out["figures"]["miscomputed"]] == ["Conv (/conv1)"]
    assert "18 output channels in each of 2 groups" in out["failures"][0] and "split-grouped-conv" in out["failures"][0]
    assert lint(fixed(src, tmp_path / "fixed.onnx"), bundle)["status"] == "passed"


@pytest.mark.slow
def test_webgpu_computes_the_split_convs_right(tmp_path):
    """The pinned onnxruntime-web gets the unaligned grouped Conv wrong and the split one right. If a new
    onnxruntime-web computes it right, this test says so: the fix and the lint rule can then be retired."""
    from recipekit.core.errors import Unavailable
    from recipekit.targets.webgpu.web import run_in_browser

    src = convs(tmp_path / "m.onnx", LAYERS[:2])
    dest = fixed(convs(tmp_path / "all.onnx", LAYERS), tmp_path / "fixed.onnx")
    x = np.random.default_rng(1).standard_normal((1, 3, HW, HW)).astype(np.float32)
    try:
        before = run_in_browser(src, [("x", {"images": x})], "jsep", eps=("webgpu",))
        after = run_in_browser(dest, [("x", {"images": x})], "jsep", eps=("webgpu",))
    except Unavailable as exc:
        pytest.skip(str(exc))
    assert np.abs(before.runs[0].cases[0].outputs["output0"] - run(src, x)).max() > 0.5
    np.testing.assert_allclose(after.runs[0].cases[0].outputs["output0"], run(dest, x), atol=1e-4)
