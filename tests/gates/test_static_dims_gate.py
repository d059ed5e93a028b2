"""static-dims: Conv inputs need known channel counts; input axes are dynamic only where the recipe says."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import trt_models as M
from pydantic import ValidationError

from recipekit.gates.base import GateContext
from recipekit.gates.static_dims import StaticDimsConfig, StaticDimsGate


def check(onnx_path: Path, recipe) -> object:
    ctx = GateContext(recipe, "trt", onnx_path.parent, onnx_path.name, onnx_path, lambda: None, lambda: None)
    return StaticDimsGate().check(ctx)


def test_computed_reshape_leaves_grouped_conv_without_channels(tmp_path: Path) -> None:
    result = check(M.grouped_conv(tmp_path, computed_shape=True), M.recipe("trt", 32))
    assert result.status == "failed"
    (failure,) = result.failures
    assert "'pe/conv/Conv'" in failure and "unknown channels" in failure
    assert "Reshape 'attn/Reshape' (its target shape is computed at run time)" in failure


def test_constant_reshape_target_passes(tmp_path: Path) -> None:
    result = check(M.grouped_conv(tmp_path, computed_shape=False), M.recipe("trt", 32))
    assert result.status == "passed", result.failures
    assert result.figures["convs_checked"] == 1


def test_input_axes_must_match_the_recipe(tmp_path: Path) -> None:
    static_batch = M.grouped_conv(tmp_path, computed_shape=False, batch=1)
    result = check(static_batch, M.recipe("trt", 32, batch=(1, 2, 4)))
    assert result.status == "failed"
    assert any("axis 0 (batch) is fixed to 1 but the recipe declares it dynamic" in f for f in result.failures)
    dynamic_hw = M.recipe("trt", 32, hw=True)
    result = check(static_batch, dynamic_hw)
    assert any("axis 2 (height) is fixed to 4" in f for f in result.failures)


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        StaticDimsConfig.model_validate({"allow": True})


@pytest.mark.slow
def test_yolov10_dynamic_batch_names_the_attention_conv() -> None:
    """Field note 3 on a real export (Ultralytics 8.4, dynamic batch, 320x320)."""
    result = check(M.export("yolov10n.yaml", 320), M.recipe("trt", 320))
    assert result.status == "failed"
    pe = [f for f in result.failures if "'/model.10/attn/pe/conv/Conv'" in f]
    assert pe and "unknown channels" in pe[0] and "Reshape '/model.10/attn/Reshape_2'" in pe[0]


@pytest.mark.slow
def test_yolov10_passes_once_reshape_targets_are_constant() -> None:
    rec = M.recipe("trt", 320)
    fixed, how = M.fixed(M.export("yolov10n.yaml", 320), rec)
    result = check(fixed, rec)
    assert result.status == "passed", (how, result.failures)
