"""split-grouped-conv on hand-made Conv graphs: which Convs it picks, identical ONNX Runtime results,
webgpu-lint naming the Conv; and in headless Chromium (slow) the upstream defect and its fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import webgpu_models as models
from helpers.fix_models import applied, jsep_before_after
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


# 3 -> 72, then 72 -> 72 in 8 groups of 9 (wrong on WebGPU; 8 groups: more tensors than one WebGPU kernel may
# bind, so the fix must not Split / Concat them in one node), 72 depthwise, 72 -> 48 in 4 groups of 12 (right)
LAYERS = [(72, 1), (72, 8), (72, 72), (48, 4)]


def run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]


def fixed(src: Path, dest: Path) -> Path:
    check, out = applied(SplitGroupedConv(), src)
    assert "/conv1" in check.why and "/conv2" not in check.why, check
    groups = [next((a.i for a in n.attribute if a.name == "group"), 1) for n in out.graph.node if n.op_type == "Conv"]
    assert groups == [1] * 9 + [72, 4]  # conv1 as 8 Convs; the depthwise and the aligned ones untouched
    bound = [len([i for i in n.input if i]) + len(n.output) for n in out.graph.node if n.op_type in ("Split", "Concat")]
    assert max(bound) <= 8
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


def test_webgpu_lint_names_the_conv_on_jsep_only(tmp_path):
    """onnxruntime-web 1.31.1: JSEP computes the Conv wrongly, the native EP right (1.30.0 had both wrong)."""
    src = convs(tmp_path / "m.onnx", LAYERS)
    assert lint(src, "webgpu")["status"] == "passed"
    bundle = "jsep"
    out = lint(src, bundle)
    assert out["status"] == "failed"
    assert [w["node"] for w in out["figures"]["miscomputed"]] == ["Conv (/conv1)"]
    assert "9 output channels in each of 8 groups" in out["failures"][0] and "split-grouped-conv" in out["failures"][0]
    assert lint(fixed(src, tmp_path / "fixed.onnx"), bundle)["status"] == "passed"


@pytest.mark.slow
def test_webgpu_computes_the_split_convs_right(tmp_path):
    """The pinned onnxruntime-web gets the unaligned grouped Conv wrong and the split one right. If a new
    onnxruntime-web computes it right, this test says so: the fix and the lint rule can then be retired."""
    src = convs(tmp_path / "m.onnx", LAYERS[:2])
    dest = fixed(convs(tmp_path / "all.onnx", LAYERS), tmp_path / "fixed.onnx")
    x = np.random.default_rng(1).standard_normal((1, 3, HW, HW)).astype(np.float32)
    before, after = jsep_before_after(src, dest, [("x", x)])
    assert np.abs(before.runs[0].cases[0].outputs["output0"] - run(src, x)).max() > 0.5
    np.testing.assert_allclose(after.runs[0].cases[0].outputs["output0"], run(dest, x), atol=1e-4)


def wide_split(path: Path, parts: int) -> Path:
    """images (1, 3, 32, 32) -> Conv to 4*parts channels -> Split into `parts` -> Relu each -> Concat."""
    rng = np.random.default_rng(0)
    c = 4 * parts
    w = numpy_helper.from_array(rng.standard_normal((c, 3, 1, 1)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["c"], name="/conv", kernel_shape=[1, 1], strides=[1, 1]),
        helper.make_node("Split", ["c"], [f"s{i}" for i in range(parts)], name="/split", axis=1, num_outputs=parts),
        *[helper.make_node("Relu", [f"s{i}"], [f"r{i}"], name=f"/relu{i}") for i in range(parts)],
        helper.make_node("Concat", [f"r{i}" for i in range(parts)], ["output0"], name="/concat", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "wide",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, HW, HW])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, c, HW, HW])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_webgpu_lint_flags_kernels_binding_more_than_8_tensors_on_jsep(tmp_path):
    """A Split into 8 is silently wrong on JSEP (9 storage buffers), into 7 right; a Concat of 8 or more is
    right (measured with 1.31.1: tests/targets/test_webgpu_localize.py)."""
    wide = lint(wide_split(tmp_path / "w8.onnx", 8), "jsep")
    assert wide["status"] == "failed"
    assert [w["node"] for w in wide["figures"]["miscomputed"]] == ["Split (/split)"]
    assert "binds 9 tensors" in wide["failures"][0] and "bundle: webgpu" in wide["failures"][0]
    assert lint(wide_split(tmp_path / "w7.onnx", 7), "jsep")["status"] == "passed"
    assert lint(wide_split(tmp_path / "w8b.onnx", 8), "webgpu")["status"] == "passed"
