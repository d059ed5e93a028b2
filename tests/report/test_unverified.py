"""A target published with a gate skipped is `unverified` in every report, with its reasons (fast).

The publish step's result carries the reasons (recipekit.graph.stages.publish.unverified); the matrix
cell, matrix.json/md/html, the terminal table, JUnit and the step summary all read them from there."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from recipekit.graph.stages.publish import unverified
from recipekit.report import ci, html
from recipekit.report.matrix import cell, terminal, to_json, to_markdown

WHY = "accuracy: int8 accuracy not judged: the recipe's judge is [fp16]; the target is unverified"


def results(tmp_path, reason: str) -> tuple[list[str], dict]:
    dest = tmp_path / "out" / "m" / "ort"
    dest.mkdir(parents=True)
    doc = {"artifact": {"path": "model.onnx", "sha256": "ab" * 32}, "verdict": "unverified" if reason else "passed"}
    (dest / "manifest.json").write_text(json.dumps(doc))
    tasks = ["m:export:onnx", "m:gate:ort.accuracy", "m:publish:ort"]
    gate = {"status": "skipped" if reason else "passed", "message": reason, "failures": [], "figures": {}}
    publish = {"task": "m:publish:ort", "status": "ran", "path": str(dest), **({"reason": reason} if reason else {})}
    res = {
        "m:export:onnx": {"task": "m:export:onnx", "status": "cached"},
        "m:gate:ort.accuracy": {"task": "m:gate:ort.accuracy", "status": "ran", "gate": gate},
        "m:publish:ort": publish,
    }
    return tasks, res


def test_skipped_gates_are_the_reasons():
    gates = {
        "parity": {"status": "not applicable", "message": "int8: ..."},
        "accuracy": {"status": "skipped", "message": "not judged here"},
        "webgpu-browser": {"status": "skipped", "message": "too slow on SwiftShader"},
        "empty-input": {"status": "passed", "message": ""},
    }
    assert unverified(gates) == ["accuracy: not judged here", "webgpu-browser: too slow on SwiftShader"]


def test_an_unverified_cell_in_every_report(tmp_path):
    tasks, res = results(tmp_path, WHY)
    c = cell("m", "ort", tasks, res, tmp_path / "out")
    assert (c.status, c.reason) == ("unverified", WHY) and c.artifact is not None  # published, not verified
    doc = to_json([c], {})
    assert doc["counts"] == {"unverified": 1} and doc["cells"][0]["reason"] == WHY
    assert "| m | ort | unverified |" in to_markdown([c]) and "unverified" in terminal([c]).splitlines()[1]
    case = ET.fromstring(ci.junit_xml([c], "s")).find(".//testcase")
    assert case.find("skipped").get("message") == f"unverified: {WHY}" and case.find("failure") is None
    assert "1 unverified" in ci.step_summary([c], "build")
    page = html.render([c], {"targets": ["ort"], "recipes": ["m"]})
    assert '<tr class="unverified">' in page and "int8 accuracy not judged" in page


def test_a_verified_cell_stays_passed(tmp_path):
    tasks, res = results(tmp_path, "")
    c = cell("m", "ort", tasks, res, tmp_path / "out")
    assert (c.status, c.reason) == ("passed", "")
    assert ET.fromstring(ci.junit_xml([c], "s")).find(".//skipped") is None
