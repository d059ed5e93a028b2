"""opset on a real yolo11n-pose nms=True export (opset 17)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers.fix_models import apply_checked, run_ort

from recipekit.fixes.base import FixContext
from recipekit.fixes.opset import Opset, default_opset

pytestmark = pytest.mark.slow


def test_converts_17_to_18_outputs_unchanged(pose_nms_fixed_onnx, pose_recipe, bus_tensor):
    raw = onnx.load(str(pose_nms_fixed_onnx))
    assert default_opset(raw) == 17
    fixed = apply_checked(Opset(Opset.Config(target=18)), raw, FixContext(pose_recipe))
    assert default_opset(fixed) == 18
    ref, got = run_ort(raw, {"images": bus_tensor})[0], run_ort(fixed, {"images": bus_tensor})[0]
    assert (ref[0, :, 4] > 0).sum() > 0
    np.testing.assert_array_equal(got, ref)


def test_cannot_apply_beyond_what_onnx_knows(pose_nms_fixed_onnx, pose_recipe):
    check = Opset(Opset.Config(target=30)).check(onnx.load(str(pose_nms_fixed_onnx)), FixContext(pose_recipe))
    assert check.status == "cannot-apply" and "newer than onnx" in check.why


def test_config_requires_a_target():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Opset.Config()
