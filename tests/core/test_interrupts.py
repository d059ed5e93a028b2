"""SIGKILL, Ctrl-C (SIGINT to the process group) and SIGTERM (to the build alone, as a service manager
sends it) during the webgpu-browser gate and during an export, at -j 1 and -j 2: within 5 s no
process of the build is left (workers, their forkserver, Chromium and its helpers), Ctrl-C and
SIGTERM print one line and no traceback and exit 130, and the next build passes.

Every process of a build carries a tag in its environment (children inherit it), so the test finds
them all, also the ones reparented after their parent was SIGKILLed. The export and compile steps
come from a warm cache copy, so each case reaches the browser within seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers.common import RECIPES
from helpers.processes import ended, left_after, tagged

from recipekit.targets.webgpu.web import find_chromium, find_ortweb

pytestmark = pytest.mark.slow

# One sample, the wasm EP only: Chromium starts as for any run (GPU, renderer, utility processes) and
# the gate takes ~20 s instead of ~2 min with SwiftShader's WebGPU on this machine.
ARGS = [
    "export.imgsz=160",
    "input.samples=[ultralytics:bus.jpg]",
    "gates.webgpu-browser.eps=[wasm]",
    "--targets",
    "webgpu",
]


def _browser_running(tag: str) -> bool:
    for pid in tagged(tag):
        try:
            if "chrom" in Path(f"/proc/{pid}/comm").read_text():
                return True
        except OSError:
            continue
    return False


def _build(cache: Path, out: Path, jobs: int, tag: str, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "recipekit", "build", str(RECIPES / "yolo11n-pose-webgpu.yaml"), *ARGS]
    cmd += ["-j", str(jobs), "--cache", str(cache), "--out", str(out)]
    env = {**os.environ, "RECIPEKIT_TEST_TAG": tag}
    return subprocess.Popen(cmd, env=env, start_new_session=True, **kw)


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    """A cache holding every step of the build except the browser gate's result."""
    chromium, why = find_chromium()
    ortweb, why_ort = find_ortweb()
    if chromium is None or ortweb is None:
        pytest.skip(why or why_ort)
    tmp = tmp_path_factory.mktemp("warm")
    proc = _build(tmp / "cache", tmp / "out", 2, uuid.uuid4().hex, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.communicate(timeout=600)[0].decode()
    assert proc.returncode == 0, out
    for meta in (tmp / "cache").glob("objects/*/*/meta.json"):
        if "webgpu-browser" in meta.read_text():
            shutil.rmtree(meta.parent)
    return tmp / "cache"


def _send(proc: subprocess.Popen, how: str) -> None:
    if how == "sigkill":
        os.kill(proc.pid, signal.SIGKILL)  # the build alone: its children must die with it
    elif how == "sigterm":
        os.kill(proc.pid, signal.SIGTERM)  # the build alone, as `kill` or a service manager does
    else:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: every process of the group


def _interrupt(proc: subprocess.Popen, how: str, tag: str) -> str:
    """Send `how`; the build must end within 5 s, with no process of it left: its stderr."""
    _send(proc, how)
    t0 = time.monotonic()
    done = ended(proc, 5)
    assert done is not None, f"the build did not exit within 5 s of {how}"
    left = left_after(tag, 5 - (time.monotonic() - t0))
    assert not left, f"processes of the build left after 5 s: {left}"
    return done[1]


def _one_line_130(code: int, err: str) -> None:
    assert code == 130 and err.strip() == "recipekit: interrupted", (code, err)


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("how", ["sigkill", "sigint", "sigterm"])
def test_signal_during_browser_gate_leaves_nothing_and_next_build_passes(tmp_path, warm_cache, how, jobs):
    cache, out, tag = tmp_path / "cache", tmp_path / "out", uuid.uuid4().hex
    shutil.copytree(warm_cache, cache)
    proc = _build(cache, out, jobs, tag, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not _browser_running(tag) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert _browser_running(tag), "the build reached the browser gate"
    time.sleep(1.0)  # well inside the gate
    err = _interrupt(proc, how, tag)
    if how != "sigkill":
        _one_line_130(proc.returncode, err)
    again = _build(cache, out, jobs, uuid.uuid4().hex, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = again.communicate(timeout=600)[0].decode()
    assert again.returncode == 0, log
    assert (out / "yolo11n-pose-webgpu" / "webgpu" / "manifest.json").is_file()


@pytest.mark.parametrize(("how", "jobs"), [("sigint", 2), ("sigterm", 1)])  # the browser gate's cases: all four
def test_signal_during_export_is_one_line_and_leaves_nothing(tmp_path, how, jobs):
    """A cold build: its workers are forked from the forkserver that imported torch while the recipe composed."""
    cache, out, tag = tmp_path / "cache", tmp_path / "out", uuid.uuid4().hex
    cmd = [sys.executable, "-m", "recipekit", "build", str(RECIPES / "yolo11n.yaml"), "export.imgsz=160"]
    cmd += ["-j", str(jobs), "--cache", str(cache), "--out", str(out)]
    env = {**os.environ, "RECIPEKIT_TEST_TAG": tag}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(cache.glob("tmp/*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert list(cache.glob("tmp/*")), "the export had started"
    time.sleep(0.3)
    err = _interrupt(proc, how, tag)
    _one_line_130(proc.returncode, err)
    assert not [p for p in cache.glob("objects/*/*/meta.json") if '"kind": "export"' in p.read_text()]
