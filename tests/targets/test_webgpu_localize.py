"""Localization (recipekit.onnx.localize) and the onnxruntime-web bundles' measured defects.

Fast: a weight perturbed in one Conv is localized to that Conv (ONNX Runtime as the backend), through the
library and through `recipekit localize`. Slow (headless Chromium, one page per bundle): on JSEP each
known defect fails without its fix, the search names its node and the single-node repro fails alone; the
native bundle runs every one of them right (which is why those fixes declare bundles ("jsep",)), and has
defects of its own (an empty Softmax or ReduceMax), found and fixed the same way; the same perturbed Conv
is localized in the browser on the default bundle.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import webgpu_models as models
from onnx import numpy_helper

from recipekit.onnx.localize import localize, ort_backend

ROOT = Path(__file__).resolve().parents[2]
LAYERS = [(16, 1), (16, 1), (16, 2), (8, 1), (8, 1), (8, 1), (8, 1), (8, 1), (8, 1), (8, 1), (8, 1)]


def perturbed(src: Path, dest: Path, weight: str = "w5") -> Path:
    """`src` with one element of one Conv's weight moved by 0.5."""
    model = onnx.load(str(src))
    w = next(i for i in model.graph.initializer if i.name == weight)
    a = numpy_helper.to_array(w).copy()
    a[3, 2, 1, 1] += 0.5
    w.CopyFrom(numpy_helper.from_array(a, weight))
    onnx.save(model, str(dest))
    return dest


def image(hw=(32, 32), seed=1) -> dict[str, np.ndarray]:
    return {"images": np.random.default_rng(seed).random((1, 3, *hw), dtype=np.float32)}


def assert_repro(loc, op: str) -> None:
    """The node named, its repro written in the ONNX test-data layout, and failing alone."""
    assert loc.status == "localized", loc.message
    assert loc.node["op_type"] == op, loc.node
    folder = Path(loc.repro)
    assert (folder / "model.onnx").is_file() and (folder / "test_data_set_0" / "input_0.pb").is_file()
    repro = onnx.load(str(folder / "model.onnx"))
    assert [n.op_type for n in repro.graph.node] == [op]
    assert loc.repro_fails, loc.repro_detail


def test_a_perturbed_conv_is_localized_to_that_conv(tmp_path):
    src = models.conv_chain(tmp_path / "sound.onnx", LAYERS)
    bad = perturbed(src, tmp_path / "bad.onnx")
    loc = localize(bad, image(), ort_backend, tmp_path / "work", reference=src)
    assert_repro(loc, "Conv")
    assert loc.node["name"] == "/conv5" and loc.node["attributes"]["kernel_shape"] == [3, 3]
    assert [i["shape"] for i in loc.node["inputs"]] == [[1, 8, 32, 32], [8, 8, 3, 3], [8]]
    worst = loc.node["worst"]
    assert worst["tensor"] == "y5" and worst["index"][1] == 3 and abs(worst["got"] - worst["ref"]) > 0.1
    assert loc.runs <= 8  # chunks of 8 over 11 tensors, the confirmation, the repro
    assert localize(src, image(), ort_backend, tmp_path / "same").status == "agrees"


def test_localize_command_names_the_conv_and_exits_1(tmp_path):
    src = models.conv_chain(tmp_path / "sound.onnx", LAYERS)
    bad = perturbed(src, tmp_path / "bad.onnx", "w2")
    cmd = [sys.executable, "-m", "recipekit", "localize", str(bad), "--backend", "ort", "--reference", str(src)]
    run = subprocess.run([*cmd, "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "first disagreeing node Conv (/conv2)" in run.stdout and "fails alone" in run.stdout
    report = json.loads((tmp_path / "out" / "localization.json").read_text())
    assert report["node"]["name"] == "/conv2" and report["case"] == "blank(0)"
    same = subprocess.run([*cmd[:-2], "--out", str(tmp_path / "same")], capture_output=True, text=True, timeout=120)
    assert same.returncode == 0 and "every output agrees" in same.stdout


# (model, input, op the search must name, the fix whose bundles name jsep, or None where the fix is a bundle)
DEFECTS = {
    "grouped Conv, 18 output channels per group": ("conv", "image", "Conv", "split-grouped-conv"),
    "Split into 9 tensors": ("split", "image", "Split", None),
    "Gemm with zero rows": ("gemm", "blank", "Gemm", "zero-safe-gemm"),
    "zero-sized Pad": ("pad", "blank", "Pad", None),
}


def defect_model(kind: str, folder: Path) -> Path:
    return {
        "conv": lambda p: models.conv_chain(p, [(144, 1), (144, 8)]),
        "split": lambda p: models.split_into(p, 9),
        "gemm": models.rows_into_gemm,
        "pad": lambda p: models.nonzero_pad(p, (32, 32)),
        "softmax": lambda p: models.rows_into_gemm(p, then="Softmax"),
        "reducemax": lambda p: models.rows_into_gemm(p, then="ReduceMax"),
    }[kind](folder / f"{kind}.onnx")


# the native EP's own defects (measured with 1.31.1): empty input to Softmax, ReduceMax, ReduceMin
NATIVE_DEFECTS = {
    "Softmax of zero rows": ("softmax", "Softmax"),
    "row-wise ReduceMax of zero rows": ("reducemax", "ReduceMax"),
}


def fixed(name: str, src: Path, dest: Path) -> Path:
    from recipekit.fixes import FIXES

    fix = FIXES.get(name)()
    onnx.save(fix.apply(onnx.load(str(src)), None), str(dest))
    return dest


@pytest.mark.slow
def test_each_bundle_defect_fails_without_its_fix_is_localized_and_its_repro_fails_alone(tmp_path):
    from recipekit.fixes import FIXES
    from recipekit.targets.webgpu.localize import localize_in_browser
    from recipekit.targets.webgpu.web.run import BrowserSession

    pytest.importorskip("recipekit.targets.webgpu.web.run")
    feeds = {"image": image(), "blank": {"images": np.zeros((1, 3, 32, 32), np.float32)}}
    try:
        session = BrowserSession()
    except Exception as exc:  # noqa: BLE001 - no Chromium / npm package here
        pytest.skip(str(exc))
    with session:
        for what, (kind, case, op, fix) in DEFECTS.items():
            src = defect_model(kind, tmp_path)
            loc = localize_in_browser(session, src, feeds[case], "jsep", tmp_path / kind)
            assert_repro(loc, op), what
            if fix:
                assert FIXES.get(fix).bundles == ("jsep",)
                after = fixed(fix, src, tmp_path / f"{kind}-fixed.onnx")
                assert localize_in_browser(session, after, feeds[case], "jsep", tmp_path / "f").status == "agrees"
        # measured with 1.31.1: a Concat of 9 (10 storage buffers) is right on JSEP; its Split into 9 is not
        concat = models.concat_of(tmp_path / "concat.onnx", 9)
        assert localize_in_browser(session, concat, feeds["image"], "jsep", tmp_path / "c").status == "agrees"
    with BrowserSession() as session:  # the native EP: none of JSEP's defects; its own, fixed by zero-safe-rows
        for what, (kind, case, _op, _fix) in DEFECTS.items():
            src = tmp_path / f"{kind}.onnx"
            (run,) = session.run(src, [(case, feeds[case])], "webgpu", ("webgpu",)).runs
            assert not run.error and not run.cases[0].error, (what, run.error, run.cases[0].error)
            ref = ort_backend(src, feeds[case]).outputs["output0"]
            np.testing.assert_allclose(run.cases[0].outputs["output0"], ref, rtol=1e-4, atol=1e-4, err_msg=what)
        for what, (kind, op) in NATIVE_DEFECTS.items():
            src = defect_model(kind, tmp_path)
            loc = localize_in_browser(session, src, feeds["blank"], "webgpu", tmp_path / kind)
            assert_repro(loc, op), what
            after = fixed("zero-safe-rows", src, tmp_path / f"{kind}-fixed.onnx")
            assert localize_in_browser(session, after, feeds["blank"], "webgpu", tmp_path / "f").status == "agrees"


@pytest.mark.slow
def test_a_perturbed_conv_is_localized_in_the_browser_on_the_default_bundle(tmp_path):
    from recipekit.targets.webgpu.bundles import DEFAULT
    from recipekit.targets.webgpu.localize import localize_in_browser
    from recipekit.targets.webgpu.web.run import BrowserSession

    src = models.conv_chain(tmp_path / "sound.onnx", LAYERS)
    bad = perturbed(src, tmp_path / "bad.onnx")
    try:
        session = BrowserSession()
    except Exception as exc:  # noqa: BLE001 - no Chromium / npm package here
        pytest.skip(str(exc))
    with session:
        loc = localize_in_browser(session, bad, image(), DEFAULT, tmp_path / "work", reference=src)
    assert_repro(loc, "Conv")
    assert loc.node["name"] == "/conv5"
