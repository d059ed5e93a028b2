"""recipes/fasterrcnn-mnv3.yaml to WebGPU: the RoI box head's Gemms get zero rows on a blank image.

Without zero-safe-gemm, webgpu-lint finds them in its blank-image run (before any browser starts);
with it, the JSEP bundle runs every case in headless Chromium (webgpu-browser passes). On the default
(native) bundle the fix is recorded not-needed and the browser runs the unguarded Gemms.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.common import RECIPES

from recipekit.targets.webgpu.web import find_chromium

pytestmark = [pytest.mark.slow, pytest.mark.skipif(find_chromium()[0] is None, reason=find_chromium()[1])]


def build(cli, tmp: Path, *overrides: str) -> tuple[int, dict]:
    code, out, err = cli(
        "build",
        RECIPES / "fasterrcnn-mnv3.yaml",
        *overrides,
        "--targets",
        "webgpu",
        "--cache",
        tmp / "c",
        "--out",
        tmp / "o",
    )
    path = tmp / "o" / "fasterrcnn-mnv3" / "webgpu" / "manifest.json"
    return code, json.loads(path.read_text()) if path.is_file() else {"output": out + err}


def test_fixed_recipe_passes_in_chromium(cli, tmp_path):
    code, m = build(cli, tmp_path, "gates.webgpu-browser.eps=[webgpu]")  # the WebGPU EP is the case; wasm is slow
    assert code == 0, m
    assert m["gates"]["webgpu-browser"]["passed"] is True, m["gates"]["webgpu-browser"]
    assert m["gates"]["webgpu-lint"]["passed"] is True
    fixes = {f["name"]: f for f in m["fixes"]} if isinstance(m["fixes"], list) else m["fixes"]
    assert fixes["zero-safe-gemm"]["status"] == "not-needed", fixes  # the default bundle runs zero-row Gemms
    assert m["gates"]["webgpu-browser"]["figures"]["bundle"] == "webgpu"


def test_lint_names_the_gemm_without_the_fix(cli, tmp_path):
    code, out, err = cli(
        "build",
        RECIPES / "fasterrcnn-mnv3.yaml",
        "fixes=[zero-safe-reshape]",
        "targets.webgpu.bundle=jsep",  # the JSEP defect (the native EP takes zero rows)
        "gates.webgpu-browser.skip=covered by webgpu-lint here",
        "--targets",
        "webgpu",
        "--cache",
        tmp_path / "c",
        "--out",
        tmp_path / "o",
    )
    assert code == 1, out + err
    assert "box_head/fc6/Gemm" in out + err and "zero-safe-gemm" in out + err, out + err
