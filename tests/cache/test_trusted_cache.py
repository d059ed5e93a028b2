"""A cache that can be trusted: every read verified, corrupt entries moved aside and rebuilt,
published bytes always those the manifest names, normal file modes, nothing left in temp."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.common import RECIPES, manifest, step_lines

pytestmark = pytest.mark.slow
SMALL = "export.imgsz=320"  # synthetic weights detect nothing much below 320


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from recipekit.cli import main

    root = tmp_path_factory.mktemp("trusted")
    assert (
        main(["build", str(RECIPES / "yolo11n.yaml"), SMALL, "--cache", str(root / "c"), "--out", str(root / "o")]) == 0
    )
    return root


def build(cli, root, *extra):
    return cli("build", RECIPES / "yolo11n.yaml", SMALL, "--cache", root / "c", "--out", root / "o", *extra)


def entry_of(root: Path, kind: str) -> Path:
    (meta,) = [p for p in (root / "c" / "objects").glob("*/*/meta.json") if json.loads(p.read_text())["kind"] == kind]
    return meta.parent


def flip(path: Path, offset: int = -100) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_published_matches_manifest(root: Path) -> dict:
    m = manifest(root / "o", "yolo11n", "ort")
    for name, digest in m["files"].items():
        assert sha(root / "o" / "yolo11n" / "ort" / name) == digest, name
    return m


@pytest.mark.parametrize("kind", ["export", "fix", "compile"])
def test_flipped_cache_entry_is_moved_aside_rebuilt_and_never_published(built, cli, kind):
    clean = assert_published_matches_manifest(built)["artifact"]["sha256"]
    entry = entry_of(built, kind)
    flip(entry / "model.onnx")
    shutil.rmtree(built / "o")
    code, out, err = build(cli, built)
    assert code == 0, out + err
    task = {"export": "yolo11n:export:ultralytics", "fix": "yolo11n:fix:chain", "compile": "yolo11n:compile:ort"}[kind]
    assert step_lines(out)[task] == "ran", out
    assert "corrupt" in out + err and entry.name in err
    assert any(p.name.startswith(entry.name) for p in (built / "c" / "corrupt").iterdir())
    assert assert_published_matches_manifest(built)["artifact"]["sha256"] == clean


def test_flipped_published_artifact_is_republished(built, cli):
    published = built / "o" / "yolo11n" / "ort" / "model.onnx"
    flip(published)
    code, out, _ = build(cli, built)
    assert code == 0 and step_lines(out)["yolo11n:publish:ort"] == "ran", out
    assert_published_matches_manifest(built)


def test_force_republishes(built, cli):
    code, out, _ = build(cli, built, "--force")
    assert code == 0 and set(step_lines(out).values()) == {"ran"}, out
    code, out, _ = build(cli, built)
    assert set(step_lines(out).values()) == {"cached"}, out


def test_cache_verify_names_the_corrupt_entry_and_repair_removes_it(built, cli):
    entry = entry_of(built, "fix")
    code, out, _ = cli("cache", "--cache", built / "c", "verify")
    assert code == 0 and "0 corrupt" in out, out
    flip(entry / "model.onnx")
    code, out, _ = cli("cache", "--cache", built / "c", "verify")
    assert code == 1 and f"CORRUPT {entry.name} yolo11n:fix:chain" in out, out
    code, out, _ = cli("cache", "--cache", built / "c", "verify", "--repair")
    assert code == 1 and "(removed)" in out and not entry.exists()
    assert cli("cache", "--cache", built / "c", "verify")[0] == 0
    code, out, _ = build(cli, built)
    assert code == 0 and step_lines(out)["yolo11n:fix:chain"] == "ran"


def test_cache_ls_and_du(built, cli):
    code, out, _ = cli("cache", "--cache", built / "c", "ls")
    rows = [line.split() for line in out.splitlines()]
    assert code == 0 and {r[1] for r in rows} >= {"export:ultralytics", "fix:chain", "compile:ort", "gate:ort.parity"}
    assert all(r[0] == "yolo11n" for r in rows)
    code, out, _ = cli("cache", "--cache", built / "c", "du")
    assert code == 0 and "export" in out and out.splitlines()[-1].startswith("total")


def test_published_and_cached_files_get_normal_modes(tmp_path, cli, built):
    old = os.umask(0o002)
    try:
        code, out, err = cli(
            "build",
            RECIPES / "yolo11n.yaml",
            SMALL,
            "gates.parity.atol=0.11",
            "--cache",
            built / "c",
            "--out",
            tmp_path,
        )
    finally:
        os.umask(old)
    assert code == 0, out + err
    target = tmp_path / "yolo11n" / "ort"
    assert target.stat().st_mode & 0o777 == 0o775
    assert {p.stat().st_mode & 0o777 for p in target.iterdir()} == {0o664}
    gate = entry_of_task(built, "yolo11n:gate:ort.parity", "0.11")
    assert gate.stat().st_mode & 0o777 == 0o775 and (gate / "meta.json").stat().st_mode & 0o777 == 0o664


def entry_of_task(root: Path, task: str, marker: str) -> Path:
    for meta in (root / "c" / "objects").glob("*/*/meta.json"):
        doc = json.loads(meta.read_text())
        if doc["task"] == task and marker in json.dumps(doc["config"]):
            return meta.parent
    raise AssertionError(f"no entry of {task} with {marker}")


def test_build_leaves_nothing_in_temp_and_sweeps_stale_cache_tmp(tmp_path):
    """A real export in a fresh process: stale cache/tmp folders of a killed build are removed at
    start, and no recipekit-* folder is left in the system temp folder afterwards."""
    temp, cache = tmp_path / "systemp", tmp_path / "c"
    temp.mkdir()
    stale = cache / "tmp" / f"{'a' * 64}.x1"
    stale.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("YOLO_CONFIG_DIR", "MPLCONFIGDIR")}
    env["TMPDIR"] = str(temp)
    cmd = [sys.executable, "-m", "recipekit", "build", str(RECIPES / "yolo11n.yaml"), SMALL]
    proc = subprocess.run([*cmd, "--cache", str(cache), "--out", str(tmp_path / "o")], env=env, capture_output=True)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    assert not stale.exists()
    assert [p.name for p in temp.iterdir() if p.name.startswith("recipekit-") and p.is_dir()] == []
