"""The onnx source: an ONNX file built here goes through fixes, targets and gates; contradicting
export options are refused with what to do instead."""

from __future__ import annotations

import pytest
from helpers.common import manifest


def tiny_model(path, opset=17, batch="N"):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["y"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["y"], ["out"])],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 64, 96])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, 4, 64, 96])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=9), str(path))


RECIPE = """name: tiny
source: {{kind: onnx, path: tiny.onnx}}
input: {{samples: [ultralytics:bus.jpg]}}
export: {{opset: {opset}, imgsz: [64, 96]{extra}}}
fixes: [{fixes}]
targets: {{ort: {{}}}}
gates: {{parity: {{atol: 1.0e-5, rtol: 1.0e-5}}}}
"""


def write(tmp_path, opset=17, extra="", fixes=""):
    tiny_model(tmp_path / "tiny.onnx")
    path = tmp_path / "tiny.yaml"
    path.write_text(RECIPE.format(opset=opset, extra=extra, fixes=fixes))
    return path


def test_onnx_file_builds_and_passes_parity_after_fixes(tmp_path, cli):
    recipe = write(tmp_path, fixes="shape-inference, {opset: {target: 18}}")
    code, out, err = cli("build", recipe, "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code == 0, out + err
    m = manifest(tmp_path / "o", "tiny", "ort")
    assert m["source"]["kind"] == "onnx" and m["gates"]["parity"]["passed"]
    assert [f["name"] for f in m["fixes"]] == ["shape-inference", "opset"]


@pytest.mark.parametrize(
    ("opset", "extra", "key", "hint"),
    [
        (13, "", "export.opset", "the file has opset 17; set export.opset: 17"),
        (17, ", nms: true", "export.nms", "NMS cannot be embedded"),
    ],
)
def test_export_options_that_cannot_apply_are_refused(tmp_path, cli, opset, extra, key, hint):
    recipe = write(tmp_path, opset=opset, extra=extra)
    code, out, err = cli("build", recipe, "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code == 1 and f"{key}: {hint}" in out + err, out + err


def test_imgsz_must_match_a_static_file(tmp_path, cli):
    recipe = write(tmp_path)
    code, out, _ = cli("build", recipe, "export.imgsz=[64,64]", "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code == 1 and "export.imgsz: the file's input is 64x96" in out


SEMANTICS = "{out: {kind: tensor, unit: none}}"


def test_recipe_declares_output_semantics_into_the_manifest(tmp_path, cli):
    recipe = write(tmp_path)
    text = recipe.read_text().replace("path: tiny.onnx}", f"path: tiny.onnx, output_kinds: {SEMANTICS}}}")
    recipe.write_text(text)
    code, out, err = cli("build", recipe, "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code == 0, out + err
    assert manifest(tmp_path / "o", "tiny", "ort")["output_kinds"]["out"] == {
        "kind": "tensor", "unit": "none", "batch_axis": 0}  # fmt: skip


@pytest.mark.parametrize(
    ("kinds", "why"),
    [
        ("{out: {kind: raw_head, groups: [{role: box, start: 0, stop: 3}]}}", "source.output_kinds"),
        ("{nothing: {kind: tensor}}", "'nothing'"),
    ],
)
def test_bad_semantics_in_the_recipe_are_one_clear_line(tmp_path, cli, kinds, why):
    recipe = write(tmp_path)
    recipe.write_text(recipe.read_text().replace("path: tiny.onnx}", f"path: tiny.onnx, output_kinds: {kinds}}}"))
    code, out, err = cli("build", recipe, "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code in (1, 2) and why in out + err and "Traceback" not in out + err, out + err
