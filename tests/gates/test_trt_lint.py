"""trt-lint: what TensorRT's ONNX parser would refuse, named, before any engine or bundle exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import trt_models as M
from onnx import TensorProto, helper
from pydantic import ValidationError

from recipekit.gates.base import GateContext
from recipekit.recipe.schema import Batch
from recipekit.targets.trt.lint import TrtLint, TrtLintConfig, op_table


def lint(onnx_path: Path, recipe, target: str = "trt-jetson", **cfg) -> object:
    ctx = GateContext(recipe, target, onnx_path.parent, onnx_path.name, onnx_path, lambda: None, lambda: None)
    return TrtLint(TrtLintConfig(**cfg)).check(ctx)


def det_graph(folder: Path, domain: str = "") -> Path:
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3, 4, 4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
    op = "Det" if not domain else "MyPlugin"
    node = helper.make_node(op, ["X"], ["Y"], name="head/Op", domain=domain)
    return M.tiny_graph(folder, [node], [x], [y], name=f"op-{op}", domains=(domain,) if domain else ())


def test_op_table_names_its_source() -> None:
    table = op_table()
    assert table["source"].startswith("https://github.com/onnx/onnx-tensorrt/blob/")
    assert table["operators"]["Conv"]["supported"] and not table["operators"]["Det"]["supported"]


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    result = lint(det_graph(tmp_path), M.recipe("trt-jetson", 32))
    assert result.status == "failed"
    assert any(
        f.startswith("op Det is not supported by TensorRT's ONNX parser") and "'head/Op'" in f for f in result.failures
    )


def test_custom_domain_op_needs_a_plugin_unless_allowed(tmp_path: Path) -> None:
    path = det_graph(tmp_path, domain="com.example")
    assert any("com.example::MyPlugin" in f for f in lint(path, M.recipe("trt", 32), "trt").failures)
    assert lint(path, M.recipe("trt", 32), "trt", allow_ops=["MyPlugin"]).status == "passed"


def test_profile_must_fit_static_axes(tmp_path: Path) -> None:
    static = M.grouped_conv(tmp_path, computed_shape=False, batch=1)
    rec = M.recipe("trt-jetson", 32, batch=(1, 1, 1))
    assert lint(static, rec).status == "passed"
    cfg = (
        M.recipe("trt-jetson", 32)
        .targets["trt-jetson"]
        .config.model_copy(update={"profiles": [Batch(min=1, opt=2, max=4)]})
    )
    rec = M.recipe("trt-jetson", 32, batch=(1, 1, 1), target_config=cfg)
    result = lint(static, rec)
    assert any(
        "profile 0: input 'X' axis 0 is static (1) in the ONNX but the profile asks 1..4 (opt 2)" in f
        for f in result.failures
    )


def test_opt_batch_independent_of_max_in_figures(tmp_path: Path) -> None:
    result = lint(M.grouped_conv(tmp_path, computed_shape=False), M.recipe("trt-jetson", 32, batch=(1, 2, 8)))
    assert result.status == "passed", result.failures
    assert result.figures["profiles"] == [{"input": "X", "min": [1, 8, 4, 4], "opt": [2, 8, 4, 4], "max": [8, 8, 4, 4]}]


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="allow_op"):
        TrtLintConfig.model_validate({"allow_op": ["Det"]})


@pytest.mark.slow
def test_yolov10_dynamic_is_refused_naming_the_conv() -> None:
    result = lint(M.export("yolov10n.yaml", 320), M.recipe("trt-jetson", 320))
    assert result.status == "failed"
    assert any("Conv '/model.10/attn/pe/conv/Conv'" in f and "unknown channels" in f for f in result.failures)


@pytest.mark.slow
def test_yolov10_passes_with_static_reshape_channels() -> None:
    pytest.importorskip(
        "recipekit.fixes.static_reshape_channels", reason="the static-reshape-channels fix is not in recipekit yet"
    )
    rec = M.recipe("trt-jetson", 320)
    fixed, how = M.fixed(M.export("yolov10n.yaml", 320), rec)
    assert how == "static-reshape-channels"
    result = lint(fixed, rec)
    assert result.status == "passed", result.failures


@pytest.mark.slow
def test_yolov10_passes_with_constant_reshape_targets() -> None:
    """The same promise as static-reshape-channels, written by the test: the lint accepts the result."""
    rec = M.recipe("trt-jetson", 320)
    result = lint(M.fold_reshapes(M.export("yolov10n.yaml", 320)), rec)
    assert result.status == "passed", result.failures
