"""The console: plain lines off a terminal, a live view on one (NO_COLOR honoured), --json events."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time

from helpers.common import ROOT, step_lines
from helpers.tiny_onnx import tiny_recipe

TASKS = ["export:onnx", "golden:onnx", "fix:chain", "compile:ort", "gate:ort.parity", "publish:ort"]
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|9[0-7]|38;[25])[;m]")


def test_plain_lines_when_stdout_is_not_a_terminal(tmp_path, cli):
    code, out, _ = cli("build", tiny_recipe(tmp_path), "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code == 0, out
    assert "\x1b" not in out
    assert step_lines(out) == {f"tiny:{t}": "ran" for t in TASKS}
    assert out.splitlines()[-1] == f"tiny/ort: published {tmp_path / 'o' / 'tiny' / 'ort'}"


def test_json_is_one_event_per_line(tmp_path, cli):
    recipe = tiny_recipe(tmp_path)
    args = ("build", recipe, "--cache", tmp_path / "c", "--out", tmp_path / "o", "--json")
    for expect in ("ran", "cached"):
        code, out, _ = cli(*args)
        assert code == 0
        events = [json.loads(line) for line in out.splitlines()]
        started = [e["task"] for e in events if e["event"] == "step-started"]
        finished = {e["task"]: e for e in events if e["event"] == "step-finished"}
        assert sorted(started) == sorted(finished) == sorted(f"tiny:{t}" for t in TASKS)
        for task, e in finished.items():
            assert e["status"] == expect and e["seconds"] >= 0 and e["error"] == ""
            assert task.endswith("publish:ort") or re.fullmatch(r"[0-9a-f]{64}", e["key"])
        assert events[-1] == {
            "event": "target",
            "recipe": "tiny",
            "target": "ort",
            "status": "published",
            "path": str(tmp_path / "o" / "tiny" / "ort"),
        }


def test_a_failed_step_is_an_event_with_its_error(tmp_path, cli):
    recipe = tiny_recipe(tmp_path, "strict", gates="{parity: {atol: {no_such_output: 0.1}}}")
    code, out, _ = cli("build", recipe, "--cache", tmp_path / "c", "--out", tmp_path / "o", "--json")
    assert code == 1
    events = [json.loads(line) for line in out.splitlines()]
    failed = [e for e in events if e["event"] == "step-finished" and e["status"] == "failed"]
    assert [e["task"] for e in failed] == ["strict:gate:ort.parity"]
    assert "tolerance key 'no_such_output' names no output" in failed[0]["error"]
    blocked = next(e for e in events if e.get("task") == "strict:publish:ort")
    assert blocked["status"] == "blocked" and "strict:gate:ort.parity" in blocked["detail"]
    assert events[-1]["status"] == "failed"


def _on_a_terminal(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run recipekit with stdout on a pseudo-terminal; everything it wrote."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "recipekit", *args],
        stdout=follower,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    os.close(follower)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([leader], [], [], 0.5)[0]:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(leader)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode("utf-8", "replace")


def test_live_view_on_a_terminal_with_colours_unless_no_color(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(TERM="xterm-256color", PYTHONPATH=str(ROOT))
    recipe = tiny_recipe(tmp_path)
    coloured = _on_a_terminal(["build", str(recipe), "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "o")], env)
    assert COLOUR.search(coloured) and "tiny:gate:ort.parity" in coloured
    plain = _on_a_terminal(
        ["build", str(recipe), "--cache", str(tmp_path / "c2"), "--out", str(tmp_path / "o2")], {**env, "NO_COLOR": "1"}
    )
    assert not COLOUR.search(plain) and "tiny:gate:ort.parity" in plain and "published" in plain


def test_the_live_part_shows_each_running_step_with_its_elapsed_time():
    from rich.console import Console

    from recipekit.core.events import StepEvent
    from recipekit.report.console import StepConsole, _Running

    console = StepConsole("plain")
    try:
        console(StepEvent.started("r:export:onnx"))
        console(StepEvent.started("r:golden:onnx"))
        console.running["r:export:onnx"] -= 3.0  # started three seconds ago
        view = Console(width=100, record=True, file=open(os.devnull, "w"), color_system=None)  # noqa: SIM115
        view.print(_Running(console))
        text = view.export_text()
        assert re.search(r"running +3\.\ds r:export:onnx", text) and "r:golden:onnx" in text
        console(StepEvent.finished({"task": "r:export:onnx", "status": "ran", "seconds_wall": 3.0}))
        view.print(_Running(console))
        assert "r:export:onnx" not in view.export_text()
    finally:
        console.close()
