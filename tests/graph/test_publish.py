"""Publishing is atomic for readers: `build/<name>/<target>` is at every instant the old complete target
or the new complete one; a build SIGKILLed anywhere in publish leaves no staging or old folder after
the next build; a published file that differs from its manifest is named (with both digests) when it
is republished. Real `recipekit` commands on a tiny ONNX recipe; the kill points are set through
RECIPEKIT_TEST_KILL_AT (graph/stages/publish.py).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.tiny_onnx import tiny_recipe

from recipekit.graph.stages import publish

OLD, NEW = "gates.parity.atol=1.0e-5", "gates.parity.atol=2.0e-5"  # two manifests of the same artifact


def build(root: Path, *extra: str, kill_at: str = "", runner: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, publish.KILL_AT: kill_at} if kill_at else None
    cmd = [*(runner or [sys.executable, "-m", "recipekit"]), "build", str(root / "tiny.yaml")]
    cmd += [*extra, "--cache", str(root / "cache"), "--out", str(root / "out")]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def complete(target: Path) -> dict:
    """The target's manifest, after checking every file it lists against its digest."""
    doc = json.loads((target / "manifest.json").read_text())
    for name, digest in doc["files"].items():
        assert hashlib.sha256((target / name).read_bytes()).hexdigest() == digest, name
    return doc


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "out" / "tiny").iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One build of the tiny recipe (OLD) shared by the module; each test works on a copy."""
    root = tmp_path_factory.mktemp("published")
    tiny_recipe(root)
    done = build(root, OLD)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


@pytest.fixture
def root(built, tmp_path):
    shutil.copytree(built, tmp_path, dirs_exist_ok=True)
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize(("point", "after"), [("publish-staged", "1e-05"), ("publish-swapped", "2e-05")])
def test_sigkill_in_publish_leaves_a_complete_target_and_the_next_build_no_staging(root, point, after):
    killed = build(root, NEW, kill_at=point)
    assert killed.returncode != 0, killed.stdout
    target = root / "out" / "tiny" / "ort"
    assert str(complete(target)["recipe"]["gates"]["parity"]["atol"]) == after  # old before the swap, new after
    assert len(leftovers(root)) == 1, "the kill came inside publish, with a staging or old folder beside the target"
    again = build(root, NEW)
    assert again.returncode == 0, again.stdout + again.stderr
    assert str(complete(target)["recipe"]["gates"]["parity"]["atol"]) == "2e-05"
    assert leftovers(root) == []


NO_EXCHANGE = [
    sys.executable,
    "-c",
    "import sys, recipekit.cache.fs as fs; fs.exchange = lambda a, b: False; "
    "from recipekit.cli import main; sys.exit(main(sys.argv[1:]))",
]


@pytest.mark.slow
def test_without_rename_exchange_a_kill_between_the_renames_is_mended_by_the_next_build(root):
    """NFS and CIFS cannot exchange: two renames, and a SIGKILL between them leaves no target until the
    next build, which republishes and removes both folders."""
    killed = build(root, NEW, kill_at="publish-between", runner=NO_EXCHANGE)
    assert killed.returncode != 0, killed.stdout
    assert not (root / "out" / "tiny" / "ort").exists() and len(leftovers(root)) == 2
    again = build(root, NEW, runner=NO_EXCHANGE)
    assert again.returncode == 0, again.stdout + again.stderr
    assert str(complete(root / "out" / "tiny" / "ort")["recipe"]["gates"]["parity"]["atol"]) == "2e-05"
    assert leftovers(root) == []


@pytest.mark.slow
def test_an_edited_published_file_is_named_with_both_digests_when_republished(root):
    target = root / "out" / "tiny" / "ort"
    expected = complete(target)["files"]["model.onnx"]
    (target / "model.onnx").write_bytes(b"edited by hand")
    found = hashlib.sha256(b"edited by hand").hexdigest()
    done = build(root, OLD)
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = [x for x in done.stdout.splitlines() if "tiny:publish:ort" in x]
    assert line.split()[0] == "ran" and f"model.onnx: manifest sha256 {expected}, found {found}" in line, line
    complete(target)
    (target / "model.onnx").unlink()
    done = build(root, OLD)
    assert f"model.onnx: manifest sha256 {expected}, found no file" in done.stdout, done.stdout
    done = build(root, NEW)  # a new manifest over intact files: republished without a word
    (line,) = [x for x in done.stdout.splitlines() if "tiny:publish:ort" in x]
    assert line.split()[0] == "ran" and "(" not in line, line


def _read_until(path: Path, stop: float, misses) -> None:
    while time.monotonic() < stop:
        if not (path / "manifest.json").is_file():
            misses.value += 1


def test_a_reader_never_finds_the_target_missing_while_it_is_swapped(tmp_path):
    dest = tmp_path / "ort"
    dest.mkdir()
    (dest / "manifest.json").write_text("0")
    misses = multiprocessing.get_context("fork").Value("i", 0)
    reader = multiprocessing.get_context("fork").Process(
        target=_read_until, args=(dest, time.monotonic() + 1.5, misses)
    )
    reader.start()
    swaps = 0
    while reader.is_alive():
        work = tmp_path / f".ort.{swaps}"
        work.mkdir()
        (work / "manifest.json").write_text(str(swaps))
        publish._swap_in(work, dest)
        swaps += 1
    reader.join()
    assert swaps > 50 and misses.value == 0, (swaps, misses.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ort"]


def test_sweep_removes_folders_of_gone_publishes_only(tmp_path):
    from recipekit.core import owner

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    reused = f"{os.getpid()}-{int(owner.tag().split('-')[1]) + 1}"  # this pid, another start: not ours
    gone = [f".ort.{dead.pid}-123.abc", f".ort.{reused}.abc", ".ort.old", ".ort.abcd1234"]
    kept = [f".ort.{owner.tag()}.abc", ".webgpu.old", ".hidden", ".ort.notes.txt"]
    for name in gone + kept:
        (tmp_path / name).mkdir()
    assert publish.sweep(tmp_path, "ort") == len(gone)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


@pytest.mark.parametrize("exchanges", [True, False])
def test_an_interrupted_swap_keeps_the_old_target_and_leaves_no_folder(tmp_path, monkeypatch, exchanges):
    """Ctrl-C (or a worker's SIGTERM) inside the swap, in a process that lives on (a Dask worker)."""
    import recipekit.cache.fs as fs

    dest, work = tmp_path / "ort", tmp_path / ".ort.1-1.new"
    for folder, text in ((dest, "old"), (work, "new")):
        folder.mkdir()
        (folder / "manifest.json").write_text(text)
    if not exchanges:
        monkeypatch.setattr(fs, "exchange", lambda a, b: False)
    point = "publish-staged" if exchanges else "publish-between"

    def interrupt(name: str) -> None:
        if name == point:
            raise KeyboardInterrupt

    monkeypatch.setattr(publish, "_kill_point", interrupt)
    with pytest.raises(KeyboardInterrupt):
        publish._swap_in(work, dest)
    assert (dest / "manifest.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ort"]
