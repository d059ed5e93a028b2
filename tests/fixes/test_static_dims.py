"""static-dims on a real yolov10n export whose H/W Ultralytics left dynamic (dynamic=True)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers.fix_models import apply_checked, batch_of, make_recipe, run_ort

from recipekit.fixes.base import FixContext
from recipekit.fixes.static_dims import StaticDims
from recipekit.onnx.util import dims

pytestmark = pytest.mark.slow


def test_hw_fixed_batch_stays_dynamic(v10_dynamic_onnx, v10_recipe, bus_tensor):
    raw = onnx.load(str(v10_dynamic_onnx))
    assert dims(raw.graph.input[0]) == ["batch", 3, "height", "width"]
    fixed = apply_checked(StaticDims(), raw, FixContext(v10_recipe))
    assert dims(fixed.graph.input[0]) == ["batch", 3, 320, 320]
    assert dims(fixed.graph.output[0]) == ["batch", 84, 2100]
    for n in (1, 3):
        x = batch_of(bus_tensor, n)
        got, ref = run_ort(fixed, {"images": x})[0], run_ort(raw, {"images": x})[0]
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
    assert StaticDims().apply(fixed, FixContext(v10_recipe)).graph == fixed.graph


def test_static_batch_when_the_recipe_has_one(v10_dynamic_onnx):
    recipe = make_recipe("yolov10n.yaml", imgsz=320, batch={"min": 2, "opt": 2, "max": 2})
    fixed = StaticDims().apply(onnx.load(str(v10_dynamic_onnx)), FixContext(recipe))
    assert dims(fixed.graph.input[0]) == [2, 3, 320, 320]
    assert dims(fixed.graph.output[0]) == [2, 84, 2100]


@pytest.mark.parametrize(
    ("export", "why"),
    [
        ({"imgsz": 640, "opset": 17, "nms": True}, "is 320 in the graph but 640 in the recipe"),
        (
            {"imgsz": 320, "opset": 17, "nms": True, "batch": {"max": 4}},
            "static 1 in the graph but dynamic in the recipe",
        ),
    ],
)
def test_cannot_apply_names_the_contradiction(pose_nms_onnx, export, why):
    check = StaticDims().check(onnx.load(str(pose_nms_onnx)), FixContext(make_recipe("yolo11n-pose.yaml", **export)))
    assert check.status == "cannot-apply" and why in check.why, check


def test_not_needed_on_a_static_export(pose_nms_onnx, pose_recipe):
    assert StaticDims().check(onnx.load(str(pose_nms_onnx)), FixContext(pose_recipe)).status == "not-needed"
