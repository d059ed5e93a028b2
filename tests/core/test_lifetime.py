"""core/lifetime.py: children die with their parent (SIGKILL too); stale temporary folders are swept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

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
