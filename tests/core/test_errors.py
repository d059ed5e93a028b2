"""Bad input: a clear error naming file, key path and expectation; exit 2; no traceback."""

from __future__ import annotations

import pytest
from helpers.common import RECIPES, copy_recipes


@pytest.fixture
def recipes(tmp_path):
    return copy_recipes(tmp_path / "recipes")


def write(recipes, text, name="bad.yaml"):
    path = recipes / name
    path.write_text(text)
    return path


BASE = "name: x\nsource: {kind: ultralytics, init: random}\ntargets: {ort: {}}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BASE + "export: {opst: 17}\n", "export.opst: unknown key (did you mean 'opset'?)"),
        (BASE + "export: {opset: seventeen}\n", "export.opset: Input should be a valid integer"),
        (BASE + "export: {batch: {min: 4, max: 2}}\n", "export.batch: expected min <= opt <= max"),
        (BASE.replace("name: x", "name: ../evil"), "name: expected a plain file name"),
        (BASE.replace("name: x", "name: a/b"), "name: expected a plain file name"),
        (BASE + "fixes: [no-such-fix]\n", "fixes[0]: unknown fix 'no-such-fix'"),
        (BASE + "gates: {paryty: {}}\n", "gates.paryty: unknown gate 'paryty' (did you mean 'parity'?)"),
        (BASE + "gates: {parity: {atoll: 1}}\n", "gates.parity.atoll: unknown key (did you mean 'atol'?)"),
        (BASE.replace("ort: {}", "onnxruntime: {}"), "targets.onnxruntime: unknown target"),
        (
            BASE.replace("ultralytics,", "ultralitics,"),
            "source: unknown source 'ultralitics' (did you mean 'ultralytics'?)",
        ),
        (
            BASE + "input: {preprocess: {scale: 0.0039, colour: rgb}}\n",
            "input.preprocess.colour: unknown key (did you mean 'color'?)",
        ),
    ],
)
def test_schema_errors(recipes, cli, text, expected):
    path = write(recipes, text)
    code, out, err = cli("show", path)
    assert code == 2
    assert str(path) in err and expected in err, err
    assert "Traceback" not in err


def test_yaml_syntax_error_gives_line_and_column(recipes, cli):
    path = write(recipes, "name: x\nsource: {kind: ultralytics\ntargets: {ort: {}}\n")
    code, _, err = cli("show", path)
    assert code == 2 and "YAML syntax error at line 3, column 8" in err, err


def test_bad_override_grammar(cli):
    code, _, err = cli("show", RECIPES / "yolo11n.yaml", "export.opset=[17")
    assert code == 2 and "bad override 'export.opset=[17'" in err


def test_override_of_unknown_key(cli):
    code, _, err = cli("show", RECIPES / "yolo11n.yaml", "export.opsett=17")
    assert code == 2 and "export.opsett: unknown key (did you mean 'opset'?)" in err


def test_override_wrong_type(cli):
    code, _, err = cli("show", RECIPES / "yolo11n.yaml", "export.imgsz=big")
    assert code == 2 and "export.imgsz" in err and "(with export.imgsz=big)" in err


def test_missing_recipe_file(cli, tmp_path):
    code, _, err = cli("show", tmp_path / "nope.yaml")
    assert code == 2 and "recipe file not found" in err


def test_missing_weights_file_says_how_to_build_without(recipes, cli, tmp_path):
    path = write(recipes, BASE.replace("init: random", "init: weights, weights: missing.pt"))
    code, _, err = cli("build", path, "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code == 2 and "source.weights: weights file not found" in err
    assert "source.init: synthetic" in (err + _)
    assert not list((tmp_path / "c").glob("objects/*/*"))


def test_unknown_target_on_command_line(cli, tmp_path):
    code, _, err = cli("build", RECIPES / "yolo11n.yaml", "--targets", "ort,nope", "--cache", tmp_path / "c")
    assert code == 2 and "--targets: nope not declared by recipe 'yolo11n'" in err


def test_shows_resolved_recipe_with_overrides(cli):
    import yaml

    code, out, _ = cli("show", RECIPES / "yolo11n.yaml", "export.opset=18", "export.imgsz=[320,480]")
    data = yaml.safe_load(out)
    assert code == 0 and data["export"]["opset"] == 18 and data["export"]["imgsz"] == [320, 480]
    assert data["input"]["preprocess"]["color"] == "rgb"  # from the _base/yolo fragment


def test_schema_names_every_plugin(cli):
    import json

    code, out, _ = cli("schema")
    doc = json.loads(out)
    assert code == 0
    assert set(doc["properties"]["targets"]["properties"]) == {"ort", "webgpu", "trt", "trt-jetson"}
    assert "parity" in doc["properties"]["gates"]["properties"]


def test_ultralytics_refuses_preprocessing_it_cannot_take(cli, tmp_path):
    """0..255 pixels into a model that wants 0..1 is refused before anything runs."""
    code, out, err = cli(
        "build",
        RECIPES / "yolo11n.yaml",
        "input.preprocess.scale=1.0",
        "--cache",
        tmp_path / "c",
        "--out",
        tmp_path / "o",
    )
    assert code == 2 and "input.preprocess.scale: Ultralytics models take RGB pixels scaled to 0..1" in err
    assert not list((tmp_path / "c").glob("objects/*/*"))
