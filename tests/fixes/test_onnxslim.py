"""onnxslim on real exports: fewer nodes, same outputs, a fixed point."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers.fix_models import apply_checked, batch_of, run_ort

from recipekit.fixes.base import FixContext
from recipekit.fixes.onnxslim import OnnxSlim
from recipekit.onnx.util import blank_inputs, zero_sized_tensors

pytestmark = pytest.mark.slow


def test_dynamic_batch_export_slims_outputs_unchanged(v10_dynamic_onnx, v10_recipe, bus_tensor):
    raw = onnx.load(str(v10_dynamic_onnx))
    fixed = apply_checked(OnnxSlim(), raw, FixContext(v10_recipe))
    assert len(fixed.graph.node) < 0.8 * len(raw.graph.node)
    for n in (1, 3):
        x = batch_of(bus_tensor, n)
        got, ref = run_ort(fixed, {"images": x})[0], run_ort(raw, {"images": x})[0]
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


def test_slimming_keeps_fixed_shape_nms_free_of_empty_tensors(pose_nms_fixed_onnx, pose_recipe, bus_tensor):
    raw = onnx.load(str(pose_nms_fixed_onnx))
    fixed = OnnxSlim().apply(raw, FixContext(pose_recipe))
    assert zero_sized_tensors(fixed, blank_inputs(fixed, pose_recipe)) == []
    got, ref = run_ort(fixed, {"images": bus_tensor})[0], run_ort(raw, {"images": bus_tensor})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
