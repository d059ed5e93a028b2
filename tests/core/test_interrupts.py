"""SIGKILL and Ctrl-C (SIGINT to the process group) during the webgpu-browser gate, at -j 1 and -j 2:
within 5 s no process of the build is left (workers, Chromium and its helpers), Ctrl-C prints no
traceback, and the next build passes.

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


def _tagged(tag: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if f"RECIPEKIT_TEST_TAG={tag}".encode() in fh.read().split(b"\0"):
                    out.append(int(entry))
        except OSError:
            continue
    return out


def _browser_running(tag: str) -> bool:
    for pid in _tagged(tag):
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


def _no_process_left(tag: str, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while _tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _tagged(tag)


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("how", ["sigkill", "sigint"])
def test_signal_during_browser_gate_leaves_nothing_and_next_build_passes(tmp_path, warm_cache, how, jobs):
    cache, out, tag = tmp_path / "cache", tmp_path / "out", uuid.uuid4().hex
    shutil.copytree(warm_cache, cache)
    proc = _build(cache, out, jobs, tag, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not _browser_running(tag) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert _browser_running(tag), "the build reached the browser gate"
    time.sleep(1.0)  # well inside the gate
    if how == "sigkill":
        os.kill(proc.pid, signal.SIGKILL)  # the build alone: its children must die with it
    else:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    t0 = time.monotonic()
    try:
        _, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"the build did not exit within 5 s of {how} (-j {jobs})")
    left = _no_process_left(tag, 5 - (time.monotonic() - t0))
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the build left after 5 s: {left}"
    if how == "sigint":
        text = err.decode()
        assert proc.returncode == 130 and "Traceback" not in text and "interrupted" in text, text
    again = _build(cache, out, jobs, uuid.uuid4().hex, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = again.communicate(timeout=600)[0].decode()
    assert again.returncode == 0, log
    assert (out / "yolo11n-pose-webgpu" / "webgpu" / "manifest.json").is_file()
