"""Whole-process behaviour: what gets imported, kills mid-step, builds from a weights file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers.common import RECIPES, copy_recipes, manifest

PROBE = """
import atexit, sys, runpy

def report():  # at exit: the command ends its process itself (cli.run), atexit handlers included
    HEAVY = ('torch', 'onnxruntime', 'ultralytics', 'tensorrt', 'onnx', 'cv2', 'dask', 's3fs')
    print('HEAVY:' + ','.join(m for m in HEAVY if m in sys.modules))
    import multiprocessing
    from multiprocessing import resource_tracker
    started = multiprocessing.active_children() or resource_tracker._resource_tracker._fd is not None  # a forkserver's
    print('PROCESSES:' + ('started' if started else 'none') + ' DOIT:' + ('doit' in sys.modules and 'yes' or 'no'))

atexit.register(report)
sys.argv = ['recipekit'] + sys.argv[1:]
runpy.run_module('recipekit', run_name='__main__')
"""


def probe(*args: str) -> tuple[list[str], str]:
    """The heavy modules a `recipekit ARGS` process imported, and its processes and doit line."""
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=False).stdout
    line = [x for x in out.splitlines() if x.startswith("HEAVY:")][-1]
    return [m for m in line[6:].split(",") if m], [x for x in out.splitlines() if x.startswith("PROCESSES:")][-1]


def heavy_modules(*args: str) -> list[str]:
    return probe(*args)[0]


def test_help_imports_nothing_heavy_not_even_doit():
    assert probe("--help") == ([], "PROCESSES:none DOIT:no")


@pytest.mark.slow
def test_noop_build_imports_nothing_heavy(tmp_path):
    cmd = [
        "build",
        str(RECIPES / "yolo11n.yaml"),
        "export.imgsz=192",
        "--cache",
        str(tmp_path / "c"),
        "--out",
        str(tmp_path / "o"),
    ]
    subprocess.run([sys.executable, "-m", "recipekit", *cmd], check=True, capture_output=True)
    assert heavy_modules(*cmd) == []
    assert probe(*cmd, "-j", "2") == ([], "PROCESSES:none DOIT:yes")  # doit decided; no worker, no forkserver
    assert heavy_modules("plan", *cmd[1:3], "--cache", str(tmp_path / "c")) == []


def _entries(cache):
    return [json.loads(p.read_text())["kind"] for p in cache.glob("objects/*/*/meta.json")]


@pytest.mark.slow
def test_sigkill_during_export_leaves_no_entry(tmp_path):
    cache, out = tmp_path / "c", tmp_path / "o"
    cmd = [
        sys.executable,
        "-m",
        "recipekit",
        "build",
        str(RECIPES / "yolo11n.yaml"),
        "export.imgsz=192",
        "--cache",
        str(cache),
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(cache.glob("tmp/*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the export
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(cache.glob("tmp/*")), "the export had started"
    assert "export" not in _entries(cache)
    assert subprocess.run(cmd, capture_output=True, check=False).returncode == 0
    assert "export" in _entries(cache)
    assert (out / "yolo11n" / "ort" / "model.onnx").is_file()


@pytest.mark.slow
def test_build_from_weights_file_and_seeded_architecture_is_reproducible(tmp_path, cli):
    """Weights made here (seeded architecture, saved by Ultralytics) build through init: weights."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from recipekit.sources.ultralytics import env as _ultralytics_env

    _ultralytics_env.prepare()
    import torch
    from ultralytics import YOLO

    recipes = copy_recipes(tmp_path / "recipes")
    torch.manual_seed(0)
    YOLO("yolo11n.yaml").save(str(recipes / "my-yolo11n.pt"))
    # an untrained head scores nothing near the default min_score: every candidate is compared
    args = ["source.init=weights", "source.weights=my-yolo11n.pt", "export.imgsz=192", "gates.parity.min_score=0"]
    digests = []
    for run in ("a", "b"):
        code, out, err = cli(
            "build", recipes / "yolo11n.yaml", *args, "--cache", tmp_path / run, "--out", tmp_path / run / "out"
        )
        assert code == 0, out + err
        m = manifest(tmp_path / run / "out", "yolo11n", "ort")
        assert m["source"]["init"] == "weights"
        digests.append(m["artifact"]["sha256"])
    assert digests[0] == digests[1]
