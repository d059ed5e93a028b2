"""The onnxruntime-web bundles through `recipekit build` (a subprocess, as users run it).

Fast: the native bundle is the default and JSEP is marked deprecated; a fix that works around a JSEP
defect is recorded `not-needed` (and not applied) when the recipe ships the native bundle, applied when it
ships JSEP. Slow (headless Chromium): a Resize whose roi is an empty constant passes webgpu-lint and the
browser gate, and webgpu-lint's CPU fallbacks are the nodes the browser's ORT found no kernel for; every
browser-gate build leaves $TMPDIR as it found it, passed, failed (its localization's repro under the
build's report folder) or interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import webgpu_models as models

from recipekit.targets.webgpu.bundles import BUNDLES, DEFAULT
from recipekit.targets.webgpu.target import WebGpuConfig
from recipekit.targets.webgpu.web import find_chromium, find_ortweb

needs_browser = pytest.mark.skipif(
    find_chromium()[0] is None or find_ortweb()[0] is None, reason=f"{find_chromium()[1]} {find_ortweb()[1]}".strip()
)
RECIPE = """name: {name}
source: {{kind: onnx, path: {model}}}
input: {{samples: [ultralytics:bus.jpg], preprocess: {{resize: stretch}}}}
export: {{opset: 17, imgsz: [32, 32]}}
fixes: [{fixes}]
targets: {{ort: {{}}, webgpu: {{bundle: {bundle}}}}}
"""


def recipe(tmp: Path, make, name: str, bundle: str = DEFAULT, fixes: str = "") -> Path:
    make(tmp / f"{name}.onnx")
    path = tmp / f"{name}.yaml"
    path.write_text(RECIPE.format(name=name, model=f"{name}.onnx", bundle=bundle, fixes=fixes))
    return path


def build(tmp: Path, path: Path, *args: str, env: dict | None = None, wait: bool = True):
    cmd = [sys.executable, "-m", "recipekit", "build", str(path), "--cache", str(tmp / "c"), "--out", str(tmp / "o")]
    proc = subprocess.Popen(
        [*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=900)
    return proc.returncode, out


def manifest(tmp: Path, name: str, target: str) -> dict:
    return json.loads((tmp / "o" / name / target / "manifest.json").read_text())


def test_native_bundle_is_the_default_and_jsep_is_deprecated():
    assert WebGpuConfig().bundle == DEFAULT == "webgpu"
    assert set(BUNDLES) == {"webgpu", "jspi", "jsep", "wasm"}
    assert BUNDLES["jsep"].deprecated and not BUNDLES["webgpu"].deprecated
    assert BUNDLES["wasm"].eps == ("wasm",) and BUNDLES["jspi"].needs_jspi


@pytest.mark.parametrize(("bundle", "status"), [(DEFAULT, "not-needed"), ("jsep", "applied")])
def test_a_jsep_workaround_is_applied_only_for_the_jsep_bundle(tmp_path, bundle, status):
    path = recipe(tmp_path, models.rows_into_gemm, "rows", bundle, fixes="zero-safe-gemm")
    code, out = build(tmp_path, path, "--targets", "ort")
    assert code == 0, out
    (fix,) = manifest(tmp_path, "rows", "ort")["fixes"]
    assert fix["name"] == "zero-safe-gemm" and fix["status"] == status, fix
    if status == "not-needed":
        assert "jsep bundle" in fix["why"] and "'webgpu' bundle" in fix["why"] and fix["nodes_after"] == 5


def left_in(tmpdir: Path) -> list[str]:
    """What a build left in its $TMPDIR, less ONNX Runtime's own `.ses` (the Python package's OneDS telemetry
    writes it on import, in every build whatever its targets: not the browser gate's doing)."""
    return sorted(p for p in os.listdir(tmpdir) if p != ".ses")


def tmp_env(tmp: Path) -> dict:
    """A fresh, empty $TMPDIR (and a cache folder for Chromium's version memo) for the build."""
    (tmp / "t").mkdir()
    return {**os.environ, "TMPDIR": str(tmp / "t"), "XDG_CACHE_HOME": str(tmp / "xdg")}


@needs_browser
@pytest.mark.slow
@pytest.mark.parametrize(
    ("make", "name", "no_kernel", "risks"),
    [
        (models.resize_empty_roi, "resize", [], []),  # the empty roi is no risk: issue 25's false alarm
        # the Gemm does get zero rows on a blank image: reported, not failed (the native EP takes them)
        (models.rows_into_gemm, "rows", ["NonZero (/NonZero)", "Transpose (/Transpose)", "Cast (/Cast)"], ["Gemm"]),
    ],
)
def test_browser_build_passes_lint_agrees_with_the_browser_and_leaves_tmpdir_as_found(
    tmp_path, make, name, no_kernel, risks
):
    env = tmp_env(tmp_path)
    code, out = build(tmp_path, recipe(tmp_path, make, name), "--targets", "webgpu", env=env)
    assert code == 0, out
    gates = manifest(tmp_path, name, "webgpu")["gates"]
    lint, browser = gates["webgpu-lint"], gates["webgpu-browser"]
    assert lint["passed"] and browser["passed"], (lint, browser)
    assert [r["node"].split()[0] for r in lint["figures"]["zero_sized_risks"]] == risks
    assert lint["figures"]["not_predicted"] == []
    assert lint["figures"]["cpu_fallbacks"] == browser["figures"]["no_kernel_nodes"]["webgpu"] == no_kernel
    assert left_in(tmp_path / "t") == []


@needs_browser
@pytest.mark.slow
def test_a_failing_browser_build_writes_the_repro_and_leaves_tmpdir_as_found(tmp_path):
    env = tmp_env(tmp_path)
    path = recipe(tmp_path, lambda p: models.nonzero_pad(p, (32, 32)), "pad", "jsep")
    code, out = build(tmp_path, path, "--targets", "webgpu", "gates.webgpu-browser.eps=[webgpu]", env=env)
    assert code == 1, out
    assert "first disagreeing node Pad (/Pad)" in out and "fails alone" in out, out
    repro = tmp_path / "o" / "pad" / "report" / "webgpu" / "webgpu-browser" / "repro" / "Pad__Pad"
    assert (repro / "model.onnx").is_file() and (repro / "test_data_set_0" / "input_0.pb").is_file()
    assert left_in(tmp_path / "t") == []


@needs_browser
@pytest.mark.slow
def test_an_interrupted_browser_build_leaves_tmpdir_as_found(tmp_path):
    env = tmp_env(tmp_path)
    path = recipe(tmp_path, models.resize_empty_roi, "resize")
    proc = build(tmp_path, path, "--targets", "webgpu", env=env, wait=False)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not any(
        p.startswith("recipekit-chromium-") for p in os.listdir(env["TMPDIR"])
    ):
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[0]
    time.sleep(2)  # Chromium is up and has written its singleton files
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert left_in(tmp_path / "t") == []


@needs_browser
@pytest.mark.slow
@pytest.mark.parametrize("bundle", ["jspi", "wasm"])
def test_the_jspi_and_wasm_bundles_pass_the_browser_gate(tmp_path, bundle):
    """This Chromium has JSPI (WebAssembly.Suspending); the wasm bundle runs the wasm EP alone."""
    from recipekit.targets.webgpu.browser import WebGpuBrowser, WebGpuBrowserConfig

    path = models.resize_empty_roi(tmp_path / "m.onnx")
    ctx = models.gate_context(path, models.recipe(32, bundle=bundle), bundle)
    out = WebGpuBrowser(WebGpuBrowserConfig()).check(ctx)
    assert out.status == "passed", out.failures
    assert {r["ep"] for r in out.figures["comparisons"]} == set(BUNDLES[bundle].eps)
    assert out.figures["adapter"]["jspi"] is True
