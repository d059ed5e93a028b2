"""recipekit's steps are doit tasks: `recipekit doit ... -- COMMAND`, a user's own dodo.py mixing them
with its tasks, `doit clean` evicting entries, and a -j worker killed mid-step. Real processes (the
`recipekit` and `doit` commands); the tiny ONNX recipe builds in about a second."""

from __future__ import annotations

import json
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
from helpers.tiny_onnx import tiny_recipe

BIN = Path(sys.executable).parent


def recipekit(*args: object, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "recipekit"), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=300, check=False)


def statuses(stdout: str) -> dict[str, str]:
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return {e["task"]: e["status"] for e in events if e["event"] == "step-finished"}


def test_recipekit_doit_lists_the_tasks_of_a_recipe(tmp_path):
    cache = tmp_path / "c"
    done = recipekit("doit", RECIPES / "yolo11n.yaml", "--cache", cache, "--", "list", "--status")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[1]: line.split()[0] for line in done.stdout.splitlines()}
    steps = ["export:ultralytics", "golden:ultralytics", "fix:chain", "compile:ort", "gate:ort.parity", "publish:ort"]
    assert {f"yolo11n:{s}" for s in steps} | {"yolo11n"} <= set(rows)
    assert rows["yolo11n:export:ultralytics"] == "R"  # to run: its entry is in no cache
    assert "Traceback" not in done.stderr
    refused = recipekit("doit", RECIPES / "yolo11n.yaml", "--cache", cache, "--", "run")
    assert refused.returncode == 2 and "recipekit build" in refused.stderr, refused.stderr
    assert not (cache / "resolved").exists() and not (cache / "objects").exists()  # listing builds nothing


DODO = """
from pathlib import Path

from doit import create_after

from recipekit.doit import tasks

DOIT_CONFIG = {"verbosity": 0}


def task_model():
    \"\"\"before: makes the ONNX file the recipe reads\"\"\"
    return {"actions": ["cp source.onnx tiny.onnx"], "file_dep": ["source.onnx"], "targets": ["tiny.onnx"]}


@create_after(executed="model", creates=["tiny"])
def task_recipekit():
    yield from tasks(["tiny.yaml"], cache="cache", out="build")


def task_upload():
    \"\"\"after: ships what the publish step wrote\"\"\"
    return {
        "actions": ["cp build/tiny/ort/model.onnx shipped.onnx"],
        "task_dep": ["tiny"],
        "file_dep": ["build/tiny/ort/model.onnx"],
        "targets": ["shipped.onnx"],
    }
"""


@pytest.mark.slow
def test_a_users_dodo_runs_its_task_then_the_build_then_its_task_and_then_nothing(tmp_path):
    tiny_recipe(tmp_path)
    (tmp_path / "tiny.onnx").rename(tmp_path / "source.onnx")
    (tmp_path / "dodo.py").write_text(DODO)
    doit = [str(BIN / "doit")]
    first = subprocess.run(doit, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    ran = [line[3:] for line in first.stdout.splitlines() if line.startswith(".  ")]
    steps = [t for t in ran if t.startswith("tiny:")]
    assert ran[0] == "model" and ran[-1] == "upload" and ran[1:-1] == steps, ran
    assert {"tiny:export:onnx", "tiny:gate:ort.parity", "tiny:publish:ort"} <= set(steps)
    assert (tmp_path / "shipped.onnx").read_bytes() == (tmp_path / "build/tiny/ort/model.onnx").read_bytes()
    again = subprocess.run(doit, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert not [line for line in again.stdout.splitlines() if line.startswith(".  ")], again.stdout


@pytest.mark.slow
def test_doit_clean_evicts_a_step_and_what_is_built_from_it_and_doit_state_decides_nothing(tmp_path):
    recipe = tiny_recipe(tmp_path)
    where = ["--cache", tmp_path / "c", "--out", tmp_path / "o"]
    assert recipekit("build", recipe, *where).returncode == 0
    clean = recipekit("doit", recipe, *where, "--", "clean", "tiny:fix:chain")
    assert clean.returncode == 0 and "tiny:fix:chain: 3 cache entries evicted of 3" in clean.stdout, clean.stdout
    again = statuses(recipekit("build", recipe, *where, "--json").stdout)
    assert again == {
        "tiny:export:onnx": "cached",
        "tiny:golden:onnx": "cached",
        "tiny:fix:chain": "ran",
        "tiny:compile:ort": "ran",
        "tiny:gate:ort.parity": "ran",
        "tiny:publish:ort": "cached",  # the same bytes: nothing to publish again
    }
    shutil.rmtree(tmp_path / "c" / "doit")  # doit's own state: gone, and nothing changes
    assert set(statuses(recipekit("build", recipe, *where, "--json").stdout).values()) == {"cached"}


def _busy_worker_of(build: int, tag: str) -> int | None:
    """A -j worker of the build (a child of its forkserver, itself a child of the build) in the middle of
    a step: a step sends its output (fd 1) to its log, a temporary file."""
    parents = {}
    for pid in tagged(tag):
        try:
            parents[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    servers = {pid for pid, parent in parents.items() if parent == build}
    for pid, parent in parents.items():
        try:
            if parent in servers and "(deleted)" in os.readlink(f"/proc/{pid}/fd/1"):
                return pid
        except OSError:
            continue
    return None


@pytest.mark.slow
def test_a_worker_killed_mid_step_fails_it_and_the_build_ends_with_exit_1(tmp_path):
    tag = uuid.uuid4().hex
    cache = tmp_path / "c"
    cmd = [str(BIN / "recipekit"), "build", str(RECIPES / "yolo11n.yaml"), "export.imgsz=160", "-j", "2"]
    proc = subprocess.Popen(
        [*cmd, "--cache", str(cache), "--out", str(tmp_path / "o"), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RECIPEKIT_TEST_TAG": tag},
        start_new_session=True,
    )
    deadline, victim = time.monotonic() + 120, None
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        victim = _busy_worker_of(proc.pid, tag) if list(cache.glob("tmp/*")) else None  # the export is mid-step
    assert victim is not None, "no worker was running a step"
    os.kill(victim, signal.SIGKILL)
    done = ended(proc, 10)
    assert done is not None, "the build did not end within 10 s of its worker's death"
    out, err = done
    left = left_after(tag, 5)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    failed = [e for e in events if e.get("status") == "failed"]
    assert proc.returncode == 1, (proc.returncode, err)
    assert failed and "the worker process running it died (killed by signal 9)" in failed[0]["error"], out
    assert "Traceback" not in err, err
    assert not left, f"processes of the build left: {left}"


def test_build_summary_attributes_failures_by_step_target_and_kind():
    from recipekit.graph.plan import Step
    from recipekit.report.console import target_lines

    steps = [
        Step("r:export:onnx", "export", "onnx"),
        Step("r:precision:int8", "precision", "int8"),
        Step("r:compile:trt", "compile", "trt", target="trt"),
        Step("r:compile:trt-jetson", "compile", "trt-jetson", target="trt-jetson"),
        Step("r:publish:trt", "publish", "trt", target="trt"),
        Step("r:publish:trt-jetson", "publish", "trt-jetson", target="trt-jetson"),
    ]
    results = {
        "r:export:onnx": {"status": "cached"},
        "r:precision:int8": {"status": "cached"},
        "r:compile:trt": {"status": "ran"},
        "r:compile:trt-jetson": {"status": "failed", "error": "no plan"},
        "r:publish:trt": {"status": "ran", "path": "/out/r/trt"},
        "r:publish:trt-jetson": {"status": "blocked"},
    }
    lines = dict(target_lines(results, steps, "r", ["trt", "trt-jetson"]))
    assert list(lines) == [
        "r/trt: published /out/r/trt",
        "r/trt-jetson: FAILED, nothing published (r:compile:trt-jetson: no plan)",
    ]
    results = {**results, "r:precision:int8": {"status": "failed", "error": "calibration"}}
    results["r:publish:trt"] = {"status": "blocked"}
    text = [t for t, _ in target_lines(results, steps, "r", ["trt"])]
    assert text == ["r/trt: FAILED, nothing published (r:precision:int8: calibration)"]  # not "not built"


@pytest.mark.slow
def test_the_repositorys_dodo_lists_every_recipe(tmp_path):
    from helpers.common import ROOT

    done = subprocess.run(
        [str(BIN / "doit"), "-f", str(ROOT / "dodo.py"), "-d", str(tmp_path), "list"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines()}
    names = {p.stem for p in RECIPES.glob("*.yaml")}  # file name = recipe name, for these recipes
    assert names <= listed and all(any(t.startswith(f"{n}:publish:") for t in listed) for n in names)
    assert (tmp_path / "cache" / "doit").is_dir() and not (tmp_path / "build").exists()
