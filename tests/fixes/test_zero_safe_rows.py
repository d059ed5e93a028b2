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
