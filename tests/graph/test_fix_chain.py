"""The fix step of an empty chain (no fix, no source fix): the export's own file is passed on,
checked, without a load and save; a model that still carries volatile metadata takes the chain's
rewrite, which drops it."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.tiny_onnx import tiny_conv, tiny_recipe


def entries(cache: Path) -> dict[str, tuple[Path, dict]]:
    out = {}
    for meta in (cache / "objects").glob("*/*/meta.json"):
        data = json.loads(meta.read_text())
        out[data["kind"]] = (meta.parent, data)
    return out


def build(cli, tmp_path: Path) -> dict[str, tuple[Path, dict]]:
    recipe = tiny_recipe(tmp_path, gates="{}")
    code, out, err = cli("build", recipe, "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code == 0, out + err
    return entries(tmp_path / "c")


def test_an_empty_chain_passes_the_export_on_as_it_is(cli, tmp_path):
    found = build(cli, tmp_path)
    (export, _), (fix, meta) = found["export"], found["fix"]
    assert (fix / "model.onnx").read_bytes() == (export / "model.onnx").read_bytes()
    result = meta["result"]
    assert result["fixes"] == [] and result["nodes"] == 2
    assert [t["name"] for t in result["io"]["inputs"]] == ["images"]
    assert result["io"]["outputs"] == [{"name": "out", "shape": ["N", 4, 64, 96], "dtype": "float32"}]


def test_volatile_metadata_still_takes_the_rewrite(cli, tmp_path):
    import onnx

    from recipekit.onnx.wire import read_header

    model = onnx.load(str(tiny_conv(tmp_path / "tiny.onnx")))
    model.metadata_props.add(key="date", value="2026-12-07T08:00:00")
    onnx.save(model, str(tmp_path / "tiny.onnx"))
    found = build(cli, tmp_path)
    (export, _), (fix, _) = found["export"], found["fix"]
    assert read_header(export / "model.onnx").metadata == {"date": "2026-12-07T08:00:00"}
    assert read_header(fix / "model.onnx").metadata == {}
    assert onnx.load(str(fix / "model.onnx")).graph == model.graph
