"""constant-folding on a real yolo11n-pose nms=True export (Identity-of-weight and Constant chains)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers.fix_models import apply_checked, run_ort

from recipekit.fixes.base import FixContext
from recipekit.fixes.constant_folding import ConstantFolding, leftovers

pytestmark = pytest.mark.slow


def test_constant_subgraphs_folded_outputs_unchanged(pose_nms_onnx, pose_recipe, bus_tensor):
    raw = onnx.load(str(pose_nms_onnx))
    assert len(leftovers(raw)) >= 5  # Identity-of-weight nodes, Shape of static tensors, ...
    fixed = apply_checked(ConstantFolding(), raw, FixContext(pose_recipe))
    assert leftovers(fixed) == [] and len(fixed.graph.node) < len(raw.graph.node)
    assert {n.op_type for n in fixed.graph.node} >= {"NonMaxSuppression", "Conv"}, "folding removes no real op"
    ref, got = run_ort(raw, {"images": bus_tensor})[0], run_ort(fixed, {"images": bus_tensor})[0]
    assert (ref[0, :, 4] > 0).sum() > 0
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
