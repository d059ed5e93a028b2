"""zero-safe-gemm on a hand-made RoI-head-like graph: NonZero rows (zero on a blank image) into a Gemm.

The fast tests check which Gemms it picks, that ONNX Runtime gives identical results on empty and
non-empty inputs, and that webgpu-lint finds the unguarded Gemm from a real blank-image run; the
slow one runs both graphs in headless Chromium's JSEP WebGPU EP, where the unguarded Gemm fails.
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
from recipekit.fixes.zero_safe_gemm import ZeroSafeGemm
from recipekit.targets.webgpu.lint import WebGpuLint, WebGpuLintConfig

HW = (32, 32)


def rows_into_gemm(path: Path, trans_a: int = 0, shape_path: bool = False) -> Path:
    return models.rows_into_gemm(path, trans_a, shape_path, HW)


def batch_gemm() -> onnx.ModelProto:
    """A classifier head: (batch, 8) -> Gemm: its rows are the graph input's batch dim, never data."""
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="/head/Gemm", transB=1)],
        "head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(np.ones((3, 8), np.float32), "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]


def inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {"blank": np.zeros((1, 3, *HW), np.float32), "noise": rng.random((1, 3, *HW), dtype=np.float32)}


def fixed(src: Path, dest: Path) -> Path:
    onnx.save(applied(ZeroSafeGemm(), src)[1], str(dest))
    return dest


def test_registered():
    assert FIXES.get("zero-safe-gemm") is ZeroSafeGemm


@pytest.mark.parametrize("trans_a", [0, 1])
def test_results_are_unchanged_on_empty_and_full_inputs(tmp_path, trans_a):
    src = rows_into_gemm(tmp_path / "m.onnx", trans_a=trans_a)
    dest = fixed(src, tmp_path / "fixed.onnx")
    for name, x in inputs().items():
        want, got = run(src, x), run(dest, x)
        assert want.shape == got.shape, name
        assert (want.shape[0] == 0) == (name == "blank")
        np.testing.assert_array_equal(want, got)


def test_batch_rows_are_left_alone():
    model = batch_gemm()
    assert ZeroSafeGemm().check(model, None).status == "not-needed"
    assert ZeroSafeGemm().guarantee(model, None).ok


def test_guarantee_fails_on_an_unguarded_gemm(tmp_path):
    g = ZeroSafeGemm().guarantee(onnx.load(str(rows_into_gemm(tmp_path / "m.onnx"))), None)
    assert not g.ok and "/fc/Gemm" in g.detail


def lint(path: Path) -> dict:
    ctx = models.gate_context(path, models.recipe(HW[0], nms=False), "jsep")
    return WebGpuLint(WebGpuLintConfig()).check(ctx).to_json()


@pytest.mark.parametrize("shape_path", [False, True])
def test_webgpu_lint_finds_the_empty_gemm_and_passes_the_fixed_graph(tmp_path, shape_path):
    src = rows_into_gemm(tmp_path / "m.onnx", shape_path=shape_path)
    out = lint(src)
    assert out["status"] == "failed", out
    assert any("/fc/Gemm" in f and "zero-safe-gemm" in f for f in out["failures"]), out["failures"]
    assert lint(fixed(src, tmp_path / "fixed.onnx"))["status"] == "passed"


@pytest.mark.slow
def test_jsep_runs_the_fixed_graph_on_a_blank_image(tmp_path):
    src = rows_into_gemm(tmp_path / "m.onnx", shape_path=True)
    dest = fixed(src, tmp_path / "fixed.onnx")
    cases = list(inputs().items())
    before, after = jsep_before_after(src, dest, cases)
    assert "invalid shape" in before.runs[0].cases[0].error, before.runs[0].cases[0]
    for case, (name, x) in zip(after.runs[0].cases, cases, strict=True):
        assert not case.error, case
        np.testing.assert_allclose(case.outputs["output0"], run(src, x), atol=1e-5, err_msg=name)
