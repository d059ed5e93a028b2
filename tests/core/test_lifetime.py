"""core/lifetime.py: children die with their parent (SIGKILL too); stale temporary folders are swept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from recipekit.core import lifetime

PARENT = """
import subprocess, sys, time
from recipekit.core.lifetime import preexec_die_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn=preexec_die_with_parent,
                         start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_a_child_in_its_own_session_dies_when_its_parent_is_sigkilled():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = _alive(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive, "the child outlived its SIGKILLed parent"


def test_sweep_removes_only_folders_of_processes_that_are_gone(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"recipekit-chromium-{dead.pid}-abc"
    stale.mkdir()
    (stale / "Default").mkdir()
    stale_log = tmp_path / f"recipekit-chromium-{dead.pid}-abc.log"
    stale_log.write_text("x")
    live = lifetime.make_tempdir("web")
    other = tmp_path / "recipekit-chromium-version.json"
    other.write_text("{}")
    assert lifetime.sweep_stale() == 2
    assert not stale.exists() and not stale_log.exists()
    assert live.is_dir() and other.is_file()


def test_a_claim_of_a_process_that_is_gone_removes_the_pymp_folder_it_names_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name, target in (("a", "pymp-abc"), ("b", "precious")):
        (tmp_path / target).mkdir()
        (tmp_path / target / "listener-x").write_text("")
        (tmp_path / f"recipekit-claim-{dead.pid}-0-{name}").write_text(target)
    mine = lifetime.claim_folder(tmp_path / "pymp-live")
    (tmp_path / "pymp-live").mkdir()
    assert lifetime.claim_folder(tmp_path / "deeper" / "pymp-x") is None  # only a direct child
    assert lifetime.sweep_stale() == 2
    assert not (tmp_path / "pymp-abc").exists() and (tmp_path / "precious" / "listener-x").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "pymp-live", "precious"])


def test_a_zombie_or_a_process_under_a_reused_pid_is_no_owner():
    from recipekit.core import owner

    child = os.fork()
    if child == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:  # exited, not reaped: a zombie
            time.sleep(0.01)
        assert not _alive(child) and os.path.exists(f"/proc/{child}")
        assert owner.gone(child)  # os.kill(zombie, 0) succeeds: that test called it alive
    finally:
        os.waitpid(child, 0)
    pid, start = owner.tag().split("-")
    assert not owner.gone(int(pid), int(start)) and not owner.gone(int(pid))
    assert owner.gone(int(pid), int(start) + 1)  # this pid, another start time: the pid was reused


# Runs as its own process: a child subreaper, so the forkserver of the build it SIGKILLs (with the build's
# process group) and its workers are reparented to it and stay zombies (it does not reap them) while the
# next build runs. The build's own folders (its forkserver's socket) belong to a process that is gone.
KILLED_BUILD = """
import ctypes, json, os, signal, subprocess, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
tmp, recipe, tiny, work = sys.argv[1:5]
env = {k: v for k, v in os.environ.items() if k not in ("YOLO_CONFIG_DIR", "MPLCONFIGDIR")}
env["TMPDIR"] = tmp
cmd = [sys.executable, "-m", "recipekit", "build", recipe, "--force", "-j", "2"]
build = subprocess.Popen(cmd + ["--cache", work + "/c1", "--out", work + "/o1"], env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def folders():
    return sorted(os.listdir(tmp))
def running():  # a worker has started a step: the forkserver it was forked from has made its folders
    return any(n.startswith("recipekit-ultralytics-") for n in folders()) and os.path.isdir(work + "/c1")
deadline = time.monotonic() + 120
while not running() and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(1.0)
made = [n for n in folders() if n.startswith("recipekit-")]
os.killpg(build.pid, signal.SIGKILL)
build.wait()
def state(name):
    try:
        return open(f"/proc/{name.split('-')[2]}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
deadline = time.monotonic() + 5  # SIGKILL is delivered asynchronously: wait until each worker has exited
while any(state(n) not in ("Z", "gone") for n in made) and time.monotonic() < deadline:
    time.sleep(0.01)
before = [state(n) for n in made]
again = subprocess.run([sys.executable, "-m", "recipekit", "build", tiny, "--cache", work + "/c2",
                        "--out", work + "/o2"], env=env, capture_output=True, text=True)
after = [state(n) for n in made]
left = folders()
while True:
    try:
        if os.waitpid(-1, 0)[0] == 0:
            break
    except ChildProcessError:
        break
print(json.dumps({"made": made, "before": before, "after": after, "left": left, "code": again.returncode,
                  "log": again.stdout + again.stderr}))
"""


@pytest.mark.slow
def test_the_next_build_sweeps_the_folders_of_a_killed_builds_zombie_workers(tmp_path):
    import json

    from helpers.common import RECIPES
    from helpers.tiny_onnx import tiny_recipe

    (tmp_path / "tmp").mkdir()
    tiny = tiny_recipe(tmp_path)
    args = [str(tmp_path / "tmp"), str(RECIPES / "yolo11n.yaml"), str(tiny), str(tmp_path)]
    done = subprocess.run([sys.executable, "-c", KILLED_BUILD, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    kinds = {name.split("-")[1] for name in report["made"]}
    assert {"ultralytics", "claim"} <= kinds, report  # the forkserver's settings folder, its socket's folder
    owners = dict(zip(report["made"], report["before"], strict=True))
    assert all(owners[n] == "Z" for n in report["made"] if "-ultralytics-" in n), report  # a zombie owns it
    assert set(report["before"]) <= {"Z", "gone"} and report["after"] == report["before"], report
    assert report["code"] == 0, report["log"]
    assert report["left"] == [], report


TINY_TORCHVISION = """
name: tiny
source:
  kind: python
  factory: torchvision.ops.misc:Conv2dNormActivation
  args: {in_channels: 3, out_channels: 4}
  outputs: [features]
input: {samples: [ultralytics:bus.jpg]}
export: {opset: 17, imgsz: [64, 96]}
targets: {ort: {}}
gates: {parity: {}}
"""
"""A torchvision module: importing torchvision imports torch._dynamo, which makes torch's cache folder."""


@pytest.mark.slow
def test_a_build_that_ends_leaves_tmpdir_as_it_found_it(tmp_path):
    """Passed, failed and interrupted, at -j 1 and -j 2: torch (torch._dynamo makes torchinductor_<user>
    on import), ONNX Runtime (its telemetry's .ses file) and the workers' settings folders leave nothing."""
    tmp, recipe = tmp_path / "tmp", tmp_path / "tiny.yaml"
    tmp.mkdir()
    recipe.write_text(TINY_TORCHVISION)
    env = {
        k: v for k, v in os.environ.items() if k not in ("YOLO_CONFIG_DIR", "MPLCONFIGDIR", "TORCHINDUCTOR_CACHE_DIR")
    }
    env["TMPDIR"] = str(tmp)
    cmd = [sys.executable, "-m", "recipekit", "build", str(recipe), "--cache", str(tmp_path / "c")]
    cmd += ["--out", str(tmp_path / "o")]

    def build(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd + list(extra), env=env, capture_output=True, text=True, timeout=300)

    passed = build("-j", "2")
    assert passed.returncode == 0 and sorted(os.listdir(tmp)) == [], passed.stdout + passed.stderr
    failed = build("-j", "1", "gates.parity.atol=0", "gates.parity.rtol=0")
    assert failed.returncode == 1 and sorted(os.listdir(tmp)) == [], failed.stdout + failed.stderr
    proc = subprocess.Popen(
        cmd + ["-j", "2", "--force"],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not any(n.startswith("recipekit-torch-") for n in os.listdir(tmp)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(n.startswith("recipekit-torch-") for n in os.listdir(tmp)), "torch made its cache folder"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert sorted(os.listdir(tmp)) == []
