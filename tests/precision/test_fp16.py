"""fp16 precision on a real YOLO11n export: float16 weights, float32 inputs/outputs, outputs within fp16 tolerance."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import trt_models as M

from recipekit.onnx.preprocess import image_tensor, resolve_sample
from recipekit.onnx.runtime import OrtRunner
from recipekit.precision import graph_precision
from recipekit.precision.fp16 import convert, fp32_weights

pytestmark = pytest.mark.slow
FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


def test_weights_half_io_float(tmp_path):
    from recipekit.recipe.schema import Preprocess

    src, dst = M.export("yolo11n.yaml", 160), tmp_path / "half.onnx"
    summary = convert(src, dst)
    raw, half = onnx.load(str(src)), onnx.load(str(dst))
    assert dst.stat().st_size < 0.6 * src.stat().st_size and summary["float16_weights"] > 50
    assert {v.type.tensor_type.elem_type for v in [*half.graph.input, *half.graph.output]} == {FLOAT}
    assert fp32_weights(half) == [] and fp32_weights(raw) != []
    assert graph_precision(half) == "fp16" and graph_precision(raw) == "fp32"
    x = image_tensor(resolve_sample("ultralytics:bus.jpg", tmp_path), (160, 160), Preprocess())
    ref, got = OrtRunner(src).run_one(x)[0], OrtRunner(dst).run_one(x)[0]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[:, 4:], ref[:, 4:], atol=0.03)  # class scores
    assert np.median(np.abs(got[:, :4] - ref[:, :4])) < 0.5  # boxes (a few synthetic DFL bins may flip)
