"""zero-safe-gathernd on a hand-made graph: NonZero indices (none on a blank image) into a GatherND.

Fast: which GatherNDs it picks, identical ONNX Runtime results on empty and full inputs, webgpu-lint
failing before and passing after; slow: JSEP in headless Chromium fails the blank image before the
fix ("Unsupported data type") and runs it after.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import webgpu_models as models
from helpers.fix_models import applied, jsep_before_after
from onnx import TensorProto, helper, numpy_helper

from recipekit.fixes import FIXES
from recipekit.fixes.zero_safe_gathernd import ZeroSafeGatherNd
from recipekit.targets.webgpu.lint import WebGpuLint, WebGpuLintConfig

HW = (32, 32)


def picks(path: Path) -> Path:
    """images -> Greater(0.5) -> NonZero -> Transpose: (K, 4) indices -> GatherND(images * 2) -> (K,)."""
    nodes = [
        helper.make_node("Greater", ["images", "half"], ["mask"], name="/Greater"),
        helper.make_node("NonZero", ["mask"], ["idx"], name="/NonZero"),
        helper.make_node("Transpose", ["idx"], ["rows"], name="/Transpose", perm=[1, 0]),
        helper.make_node("Mul", ["images", "two"], ["scaled"], name="/Mul"),
        helper.make_node("GatherND", ["scaled", "rows"], ["output0"], name="/GatherND"),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
    ]
    graph = helper.make_graph(
        nodes,
        "picks",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *HW])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["k"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]


def inputs() -> dict[str, np.ndarray]:
    return {
        "blank": np.zeros((1, 3, *HW), np.float32),
        "noise": np.random.default_rng(1).random((1, 3, *HW), dtype=np.float32),
    }


def fixed(src: Path, dest: Path) -> Path:
    onnx.save(applied(ZeroSafeGatherNd(), src)[1], str(dest))
    return dest


def test_registered():
    assert FIXES.get("zero-safe-gathernd") is ZeroSafeGatherNd


def test_results_are_unchanged_on_empty_and_full_inputs(tmp_path):
    src = picks(tmp_path / "m.onnx")
    dest = fixed(src, tmp_path / "fixed.onnx")
    for name, x in inputs().items():
        want, got = run(src, x), run(dest, x)
        assert (want.size == 0) == (name == "blank")
        np.testing.assert_array_equal(want, got)


def test_guarantee_fails_on_an_unguarded_gathernd(tmp_path):
    g = ZeroSafeGatherNd().guarantee(onnx.load(str(picks(tmp_path / "m.onnx"))), None)
    assert not g.ok and "/GatherND" in g.detail


def test_webgpu_lint_fails_before_and_passes_after(tmp_path):
    src = picks(tmp_path / "m.onnx")
    lint = lambda p: WebGpuLint(WebGpuLintConfig()).check(  # noqa: E731
        models.gate_context(p, models.recipe(HW[0]), "jsep")
    )
    before = lint(src)
    assert before.status == "failed" and "GatherND (/GatherND)" in before.failures[0]
    assert lint(fixed(src, tmp_path / "fixed.onnx")).status == "passed"


@pytest.mark.slow
def test_jsep_runs_the_fixed_graph_on_a_blank_image(tmp_path):
    src = picks(tmp_path / "m.onnx")
    dest = fixed(src, tmp_path / "fixed.onnx")
    cases = list(inputs().items())
    before, after = jsep_before_after(src, dest, cases)
    assert before.runs[0].cases[0].error, before.runs[0].cases[0]
    for case, (name, x) in zip(after.runs[0].cases, cases, strict=True):
        assert not case.error, case
        np.testing.assert_allclose(case.outputs["output0"], run(src, x), atol=1e-6, err_msg=name)
