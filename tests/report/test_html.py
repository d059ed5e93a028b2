"""matrix.html, JUnit XML and the CI step summary from a real matrix: an ONNX-source cell that passes
with zero error, and a WebGPU cell that fails its browser gate (real Chromium, exact tolerances)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from helpers.cdp import screenshot
from helpers.tiny_onnx import tiny_recipe

EXACT = "{parity: {atol: 1.0e-5, rtol: 1.0e-5}, webgpu-browser: {atol: 0.0, rtol: 0.0}}"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import os

    from recipekit.cli import main

    root = tmp_path_factory.mktemp("html")
    recipes = [tiny_recipe(root, "tiny"), tiny_recipe(root, "tiny-exact", targets="{webgpu: {}}", gates=EXACT)]
    summary = root / "summary.md"
    os.environ["GITHUB_STEP_SUMMARY"] = str(summary)
    try:
        code = main(
            [
                "matrix",
                *map(str, recipes),
                "--cache",
                str(root / "c"),
                "--out",
                str(root / "o"),
                "-q",
                "--report",
                str(root / "rep"),
                "--junit",
                str(root / "junit.xml"),
            ]
        )
    finally:
        del os.environ["GITHUB_STEP_SUMMARY"]
    cells = json.loads((root / "rep" / "matrix.json").read_text())["cells"]
    return root, code, {(c["recipe"], c["target"]): c for c in cells}


def _cells(report):
    from recipekit.report.matrix import Cell

    return [Cell(**c) for c in report[2].values()]


def _browser_ran(report):
    cell = report[2][("tiny-exact", "webgpu")]
    if cell["gates"].get("webgpu-browser", {}).get("status") == "unavailable":
        pytest.skip(f"no browser here: {cell['gates']['webgpu-browser']['message']}")
    return cell


pytestmark = pytest.mark.slow


def test_cells_and_why_names_the_gate_once(report):
    _, code, cells = report
    cell = _browser_ran(report)
    assert code == 1 and cells[("tiny", "ort")]["status"] == "passed" and cell["status"] == "failed"
    assert cell["reason"].startswith("gate webgpu-browser: webgpu EP on ")
    assert cell["reason"].count("webgpu-browser") == 1
    assert {c["reference"] for c in cells.values()} == {"the source ONNX (ONNX Runtime CPU)"}


def test_error_plot_zero_is_zero_and_the_failed_cell_shows_its_failing_gate(report):
    from recipekit.report.html import error_bars, error_plot

    cell = _browser_ran(report)
    bars = error_bars(_cells(report))
    passed = [b for b in bars if b.label.startswith("tiny/ort:")]
    assert [(b.value, b.failed) for b in passed] == [(0.0, False)] and "[parity vs the source ONNX" in passed[0].label
    failed = [b for b in bars if b.label.startswith("tiny-exact/")]
    rows = [r for r in cell["gates"]["webgpu-browser"]["figures"]["comparisons"] if not r["passed"]]
    assert failed and all(b.failed and "[webgpu-browser vs ONNX Runtime CPU, same file]" in b.label for b in failed)
    assert sorted(b.value for b in failed) == sorted(r["max_abs"] for r in rows)
    fig = error_plot(bars)
    ax = fig.axes[0]
    widths = {t.get_text(): p.get_width() for t, p in zip(ax.get_yticklabels(), ax.patches, strict=True)}
    assert widths[passed[0].label] == 0.0 and ax.get_xlim()[0] == 0.0
    assert all(widths[b.label] == pytest.approx(b.value) for b in failed)
    colours = {t.get_text(): p.get_facecolor()[:3] for t, p in zip(ax.get_yticklabels(), ax.patches, strict=True)}
    assert colours[failed[0].label] != colours[passed[0].label] and colours[failed[0].label][0] > 0.6
    assert "against the reference named in each row" in ax.get_xlabel()


def test_page_renders_in_chromium_without_console_errors(report, tmp_path):
    from recipekit.targets.webgpu.web.chromium import find_chromium

    root = report[0]
    exe, why = find_chromium()
    if exe is None:
        pytest.skip(why)
    page = (root / "rep" / "matrix.html").read_text()
    assert "<script" not in page and "against PyTorch" not in page
    shot = screenshot(exe, (root / "rep" / "matrix.html").as_uri(), tmp_path / "matrix.png")
    assert shot["errors"] == [] and shot["title"] == "recipekit matrix"
    assert shot["svgs"] == 2 and shot["width"] <= 1400
    png = (tmp_path / "matrix.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_junit_one_case_per_cell_with_the_failing_gate_message(report):
    root = report[0]
    cell = _browser_ran(report)
    suite = ET.parse(root / "junit.xml").getroot().find("testsuite")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.findall("testcase")}
    assert set(cases) == {("tiny", "ort"), ("tiny-exact", "webgpu")}
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert cases[("tiny", "ort")].find("failure") is None
    failure = cases[("tiny-exact", "webgpu")].find("failure")
    assert failure.get("message") == f"webgpu-browser: {cell['gates']['webgpu-browser']['message']}"
    failures = cell["gates"]["webgpu-browser"]["failures"]
    assert failures and failure.text.splitlines() == [f"webgpu-browser: {f}" for f in failures]


def test_step_summary_is_markdown(report):
    text = (report[0] / "summary.md").read_text()
    assert text.startswith("## recipekit matrix\n")
    assert "| tiny | ort | passed |" in text and "| tiny-exact | webgpu |" in text
