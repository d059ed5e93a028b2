"""shape-inference on a real yolov10n dynamic export (which stores no intermediate shapes)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers.fix_models import apply_checked, batch_of, run_ort

from recipekit.fixes.base import FixContext
from recipekit.fixes.shape_inference import ShapeInference

pytestmark = pytest.mark.slow


def test_every_node_output_gets_a_shape(v10_dynamic_onnx, v10_recipe, bus_tensor):
    fix, ctx = ShapeInference(), FixContext(v10_recipe)
    raw = onnx.load(str(v10_dynamic_onnx))
    assert not fix.guarantee(raw, ctx).ok, "the raw export stores no intermediate shapes"
    fixed = apply_checked(fix, raw, ctx)
    assert len(fixed.graph.node) == len(raw.graph.node)
    for n in (1, 3):
        x = batch_of(bus_tensor, n)
        np.testing.assert_array_equal(run_ort(fixed, {"images": x})[0], run_ort(raw, {"images": x})[0])
    assert fix.apply(fixed, ctx).graph == fixed.graph


def test_symbolic_engine_on_embedded_nms(pose_nms_fixed_onnx, pose_recipe, bus_tensor):
    """ONNX Runtime's symbolic engine (slow on dynamic H/W graphs, so tested on a static one)."""
    fix, ctx = ShapeInference(ShapeInference.Config(engine="symbolic")), FixContext(pose_recipe)
    raw = onnx.load(str(pose_nms_fixed_onnx))
    fixed = apply_checked(fix, raw, ctx)
    np.testing.assert_array_equal(run_ort(fixed, {"images": bus_tensor})[0], run_ort(raw, {"images": bus_tensor})[0])
