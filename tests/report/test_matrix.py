"""A real matrix: 3 recipes x 2 targets (one cell failing its gate), its reports, exit codes."""

from __future__ import annotations

import json

import pytest
from helpers.common import copy_recipes

pytestmark = pytest.mark.slow
SIZE = "export.imgsz=192"
STRICT = """defaults: [_base/yolo, _self_]
name: yolo11n-strict
source: {kind: ultralytics, model: yolo11n.yaml, init: synthetic}
targets:
  ort: {gates: {parity: {box_px: 1.0e-9, score_abs: 1.0e-9}}}   # impossible: this cell must fail
"""


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    from recipekit.cli import main

    root = tmp_path_factory.mktemp("matrix")
    recipes = copy_recipes(root / "recipes")
    (recipes / "yolo11n-strict.yaml").write_text(STRICT)
    chosen = [str(recipes / n) for n in ("yolo11n.yaml", "yolov10n-dynamic.yaml", "yolo11n-strict.yaml")]
    args = [
        "matrix",
        *chosen,
        "--targets",
        "ort,trt-jetson",
        SIZE,
        "--cache",
        str(root / "cache"),
        "--out",
        str(root / "out"),
        "-j",
        "2",
        "-q",
    ]
    code = main([*args, "--report", str(root / "report")])
    return root, args, code


def test_statuses_and_exit_code(matrix):
    root, _, code = matrix
    doc = json.loads((root / "report" / "matrix.json").read_text())
    cells = {(c["recipe"], c["target"]): c for c in doc["cells"]}
    assert code == 1
    assert len(cells) == 6
    assert cells[("yolo11n-strict", "ort")]["status"] == "failed"
    assert cells[("yolo11n-strict", "ort")]["reason"].startswith("gate parity")
    others = [c for k, c in cells.items() if k != ("yolo11n-strict", "ort")]
    assert all(c["status"] == "passed" for c in others), [(c["recipe"], c["target"], c["reason"]) for c in others]
    assert doc["counts"] == {"passed": 5, "failed": 1}


def test_json_schema(matrix):
    root, _, _ = matrix
    doc = json.loads((root / "report" / "matrix.json").read_text())
    assert doc["schema"] == "recipekit.matrix/1"
    assert doc["overrides"] == [SIZE] and doc["targets"] == ["ort", "trt-jetson"]
    cell = next(c for c in doc["cells"] if c["recipe"] == "yolo11n" and c["target"] == "ort")
    assert set(cell) == {"recipe", "target", "status", "reason", "seconds", "cached", "artifact", "gates", "reference"}
    assert len(cell["artifact"]["sha256"]) == 64 and cell["reference"] == "PyTorch"
    assert cell["gates"]["parity"]["passed"] is True
    assert "box_px_max" in cell["gates"]["parity"]["figures"]["outputs"]["output0"]
    assert cell["cached"] is False and cell["seconds"] > 0
    latency = cell["gates"]["latency"]["figures"]
    assert latency["runner"].startswith("onnxruntime") and latency["per_batch"]["1"]["median_ms"] > 0
    assert latency["threads"] >= 1  # timings depend on the cores a worker had


def test_markdown_table(matrix):
    root, _, _ = matrix
    md = (root / "report" / "matrix.md").read_text().splitlines()
    assert md[0].startswith("| recipe | target | status")
    assert len(md) == 2 + 6
    assert any(line.startswith("| yolo11n-strict | ort | failed |") for line in md)


def test_html_renders_table_and_plots_in_chromium(matrix, tmp_path):
    from helpers.cdp import screenshot

    root, _, _ = matrix
    html = root / "report" / "matrix.html"
    text = html.read_text()
    assert "<script" not in text and "http" not in text.split("<svg", 1)[0]
    assert text.count("<tr class=") == 6 and "[parity vs PyTorch]" in text
    shot = screenshot("chromium", html.as_uri(), tmp_path / "matrix.png")
    assert shot["errors"] == [] and shot["svgs"] == 2
    assert "Worst error per output" in text and "Latency per batch size" in text


def test_second_run_is_all_cached_and_unavailable_counts_only_when_strict(matrix, cli):
    root, args, _ = matrix
    code, out, _ = cli(*args)
    assert code == 1  # the failing cell fails again, from the cache
    lines = out.splitlines()
    rows = [line.split() for line in lines[[i for i, x in enumerate(lines) if x.startswith("recipe ")][0] + 1 :]]
    assert rows and all(r[4] == "cached" for r in rows), out
    one = [a for a in args if not a.endswith(("yolov10n-dynamic.yaml", "yolo11n-strict.yaml"))]
    one[one.index("ort,trt-jetson")] = "ort,trt"
    code, out, _ = cli(*one)
    assert code == 0 and "unavailable" in out
    code, _, _ = cli(*one, "--strict")
    assert code == 1
