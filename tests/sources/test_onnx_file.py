"""The onnx source: an ONNX file built here goes through fixes, targets and gates; contradicting
export options are refused with what to do instead."""

from __future__ import annotations

import pytest
from helpers.common import manifest


def tiny_model(path, opset=17, batch="N", dims=None, ir=9, extra_input=False, elem=1):
    """Conv + Relu on `dims` (default [batch, 3, 64, 96]); `batch=-1` is how Paddle writes a dynamic batch."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    dims = dims or [batch, 3, 64, 96]
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    inputs = [helper.make_tensor_value_info("images", elem, dims)]
    inputs += [helper.make_tensor_value_info("scale", 1, [1, 2])] if extra_input else []
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["y"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["y"], ["out"])],
        "tiny",
        inputs,
        [helper.make_tensor_value_info("out", 1, [dims[0], 4, *dims[2:]])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)
    onnx.save(model, str(path))


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
    assert code == 2 and f"{key}: tiny.onnx: {hint}" in err, out + err  # at plan: nothing was built
    assert not (tmp_path / "o").exists()


def test_imgsz_must_match_a_static_file(tmp_path, cli):
    recipe = write(tmp_path)
    code, out, err = cli("build", recipe, "export.imgsz=[64,64]", "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code == 2 and "export.imgsz: tiny.onnx: the file's input 'images' Nx3x64x96 is static at 64x96" in err


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


PLAN_REFUSALS = [
    ({"opset": 27}, [], "source.path", "tiny.onnx: the file has opset 27; onnxruntime 1.31.1 reads opsets 7..26"),
    ({"ir": 14}, [], "source.path", "tiny.onnx: IR version 14 is newer than onnxruntime 1.31.1 reads (up to 13)"),
    ({"extra_input": True}, [], "input.name", "the file has 2 inputs ['images', 'scale']"),
    ({}, ["+input.name=pixels"], "input.name", "the file's input is 'images', not 'pixels'; set input.name: images"),
    ({}, ["input.dtype=float16"], "input.dtype", "has element type 1; set input.dtype: float32"),
    ({"elem": 2}, [], "input.dtype", "has element type 2; recipekit feeds float32 or float16 images"),
    ({"dims": ["N", 64, 96, 3]}, [], "input.preprocess.layout", "set input.preprocess.layout"),
    ({"dims": ["N", 1, 64, 96]}, [], "source.path", "takes 1 channels; preprocessing makes 3"),
    ({"dims": ["N", 3, 64]}, [], "source.path", "recipekit feeds 4-D images"),
    ({}, ["input.shapes=[[64,64]]"], "input.shapes[0]", "is static at 64x96, not 64x64; remove it"),
    ({}, ["export.dynamic.hw=true"], "export.dynamic.hw", "has a static 64x96"),
    ({"batch": 1}, ["export.batch.max=4"], "export.batch", "the file has a static batch of 1; a dynamic batch"),
    ({"batch": 2}, [], "export.batch", "static batch of 2; set export.batch: {min: 2, opt: 2, max: 2}"),
]


@pytest.mark.parametrize(("model", "overrides", "key", "why"), PLAN_REFUSALS)
def test_everything_wrong_with_an_onnx_file_is_refused_at_plan(tmp_path, cli, model, overrides, key, why):
    """From the file's protobuf header (onnx not imported): exit 2 at plan, naming the file and the key."""
    recipe = write(tmp_path)
    tiny_model(tmp_path / "tiny.onnx", **model)
    code, out, err = cli("plan", recipe, *overrides, "--cache", tmp_path / "c")
    assert code == 2, out + err
    assert f"{key}: tiny.onnx: " in err and why in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_the_tools_read_what_the_plan_says_and_no_more():
    """READS is measured: onnxruntime loads the newest opset and IR version it names, not the next."""
    import onnxruntime as ort
    from onnx import helper

    from recipekit.sources.onnx_file import READS

    assert READS["tool"] == f"onnxruntime {ort.__version__}"
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", 1, [1])],
        [helper.make_tensor_value_info("y", 1, [1])],
    )

    def loads(opset: int, ir: int) -> bool:
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 - refusing is the answer
            return False
        return True

    top, ir = READS["opsets"][1], READS["ir"]
    assert loads(top, ir) and not loads(top + 1, ir) and not loads(top, ir + 1)


def test_a_paddle_style_minus_one_batch_builds_with_a_dynamic_batch(tmp_path, cli):
    """dim_value -1 (Paddle's dynamic batch) is dynamic: batch 1..4 builds, the exported graph names
    the axis, and batch-consistency runs batches of 2..4 against batch 1."""
    import onnx

    recipe = write(tmp_path)
    tiny_model(tmp_path / "tiny.onnx", batch=-1)
    assert onnx.load(str(tmp_path / "tiny.onnx")).graph.input[0].type.tensor_type.shape.dim[0].dim_value == -1
    args = ["export.batch={min: 1, opt: 2, max: 4}", "+gates.batch-consistency={}"]
    code, out, err = cli("build", recipe, *args, "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code == 0, out + err
    m = manifest(tmp_path / "o", "tiny", "ort")
    assert m["gates"]["batch-consistency"]["passed"] and m["gates"]["batch-consistency"]["figures"]["sizes"][-1] == 4
    built = onnx.load(str(tmp_path / "o" / "tiny" / "ort" / "model.onnx"))
    assert built.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.slow
def test_paddleocr_onnx_files_rapidocr_ships_build(tmp_path, cli):
    """Real foreign ONNX files: the direction classifier (batch dim_value -1, H and W '?') builds with
    batch 1..4 and passes batch-consistency; the detector (symbolic N, H, W) builds with the per-image
    multiple-of-32 resize at its declared shapes. `recipekit matrix -j 2`, as a team would run them."""
    import importlib.util

    from helpers.common import copy_recipes

    if importlib.util.find_spec("rapidocr_onnxruntime") is None:  # its models only (its pipeline's deps are not ours)
        pytest.skip("rapidocr-onnxruntime is not installed: run scripts/setup.sh (the fixtures extra)")

    recipes = copy_recipes(tmp_path / "recipes")
    args = ["matrix", recipes / "ppocr-cls.yaml", recipes / "ppocr-det.yaml", "--targets", "ort", "-j", "2"]
    code, out, err = cli(*args, "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code == 0, out + err
    cls = manifest(tmp_path / "o", "ppocr-cls", "ort")
    batch = cls["gates"]["batch-consistency"]
    assert batch["passed"] and batch["figures"]["sizes"][-1] == 4
    assert cls["source"]["notes"]["negative_dims_named"] == 2  # the input's and the output's -1 batch
    det = manifest(tmp_path / "o", "ppocr-det", "ort")
    assert det["gates"]["parity"]["passed"] and det["preprocess"]["resize"] == "multiple"


@pytest.mark.parametrize(
    ("overrides", "key", "why"),
    [
        (["input.preprocess.resize=multiple"], "export.dynamic.hw", "resize: multiple feeds every image at its own"),
        (
            ["input.preprocess.resize=multiple", "export.dynamic.hw=true", "input.preprocess.multiple=40"],
            "export.imgsz",
            "[64, 96]: resize: multiple needs multiples of 40",
        ),
        (
            ["input.preprocess.resize=fixed-height", "input.shapes=[[32,96]]"],
            "input.shapes[0]",
            "fixed-height buckets share the export height 64",
        ),
    ],
)
def test_image_sized_preprocessing_is_checked_against_the_shapes_at_plan(tmp_path, cli, overrides, key, why):
    code, out, err = cli("plan", write(tmp_path), *overrides, "--cache", tmp_path / "c")
    assert code == 2 and f"{key}: " in err and why in err, out + err
