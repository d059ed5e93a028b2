"""static-reshape-channels on a real yolov10n dynamic-batch export (field notes case 3)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers.fix_models import apply_checked, batch_of, run_ort

from recipekit.fixes.base import FixContext
from recipekit.fixes.static_dims import StaticDims
from recipekit.fixes.static_reshape_channels import StaticReshapeChannels
from recipekit.onnx.util import unknown_conv_channels

pytestmark = pytest.mark.slow
PE = "/model.10/attn/pe/conv/Conv"


@pytest.fixture(scope="module")
def static_hw(v10_dynamic_onnx, v10_recipe):
    """The export with H/W declared static (batch stays dynamic), as a recipe chain would run it."""
    return StaticDims().apply(onnx.load(str(v10_dynamic_onnx)), FixContext(v10_recipe))


def test_pe_conv_channels_unknown_before_and_known_after(static_hw, v10_recipe):
    ctx = FixContext(v10_recipe)
    before = dict(unknown_conv_channels(static_hw))
    assert PE in before and not any(isinstance(d, int) for d in before[PE]), before
    fixed = apply_checked(StaticReshapeChannels(), static_hw, ctx)
    assert unknown_conv_channels(fixed) == []
    batch = fixed.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "batch", "the batch axis stays dynamic"


def test_outputs_unchanged_at_batch_1_and_3(v10_dynamic_onnx, static_hw, v10_recipe, bus_tensor):
    fixed = StaticReshapeChannels().apply(static_hw, FixContext(v10_recipe))
    for n in (1, 3):
        x = batch_of(bus_tensor, n)
        (ref,), (got,) = run_ort(v10_dynamic_onnx, {"images": x}), run_ort(fixed, {"images": x})
        assert got.shape == ref.shape == (n, 84, 2100)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


def test_idempotent(static_hw, v10_recipe):
    fix, ctx = StaticReshapeChannels(), FixContext(v10_recipe)
    once = fix.apply(static_hw, ctx)
    assert fix.check(once, ctx).status == "not-needed"
    assert fix.apply(once, ctx).graph.SerializeToString() == once.graph.SerializeToString()


def test_cannot_apply_while_hw_are_dynamic_in_the_graph(v10_dynamic_onnx, v10_recipe):
    check = StaticReshapeChannels().check(onnx.load(str(v10_dynamic_onnx)), FixContext(v10_recipe))
    assert check.status == "cannot-apply" and "static-dims" in check.why, check
