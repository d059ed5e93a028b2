"""An ONNX source whose weights live in model.onnx.data builds to ort and webgpu (the browser gate
runs it in real Chromium, weights passed through onnxruntime-web's externalData); one changed byte
of the data file reruns export and everything after it."""

from __future__ import annotations

import json

import pytest
from helpers.common import manifest, step_lines
from helpers.onnx_models import external_data_model

pytestmark = pytest.mark.slow

RECIPE = """name: ext
source: {kind: onnx, path: m.onnx}
input: {samples: [ultralytics:bus.jpg]}
export: {opset: 17, imgsz: [64, 96]}
fixes: [shape-inference]
targets: {ort: {}, webgpu: {}}
gates: {parity: {atol: 1.0e-4, rtol: 1.0e-4}}
"""


def test_external_data_source_builds_ships_its_data_and_is_keyed_by_it(tmp_path, cli):
    from recipekit.targets.webgpu.web import require_tools

    require_tools()  # Chromium and onnxruntime-web: this test runs the browser gate for real
    model = external_data_model(tmp_path / "m.onnx")
    recipe = tmp_path / "ext.yaml"
    recipe.write_text(RECIPE)
    args = ["build", recipe, "--cache", tmp_path / "c", "--out", tmp_path / "o", "--require"]
    code, out, err = cli(*args)
    assert code == 0, out + err
    for target in ("ort", "webgpu"):
        m = manifest(tmp_path / "o", "ext", target)
        assert "model.onnx.data" in m["files"], target
        assert (tmp_path / "o" / "ext" / target / "model.onnx.data").stat().st_size > 1000
        assert m["gates"]["parity"]["passed"]
    web = manifest(tmp_path / "o", "ext", "webgpu")
    assert web["gates"]["webgpu-browser"]["passed"], web["gates"]["webgpu-browser"]
    page = json.loads((tmp_path / "o" / "ext" / "webgpu" / "webgpu.json").read_text())
    assert page["external_data"] == [{"path": "model.onnx.data", "data": "model.onnx.data"}]

    data = model.parent / "m.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[200] ^= 0x01
    data.write_bytes(bytes(raw))
    code, out, err = cli(*args)
    assert code == 0, out + err
    statuses = step_lines(out)
    assert statuses and set(statuses.values()) == {"ran"}, out
