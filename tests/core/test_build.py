"""Real builds of yolo11n (small imgsz): publish, caching, incremental rebuilds."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from helpers.common import RECIPES, manifest, step_lines

pytestmark = pytest.mark.slow
SMALL = "export.imgsz=256"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One cold build shared by the tests of this module (cache and out in a temp dir)."""
    from recipekit.cli import main

    root = tmp_path_factory.mktemp("build")
    code = main(
        ["build", str(RECIPES / "yolo11n.yaml"), SMALL, "--cache", str(root / "cache"), "--out", str(root / "out")]
    )
    assert code == 0
    return root


def args(root, *extra):
    return ["build", RECIPES / "yolo11n.yaml", SMALL, "--cache", root / "cache", "--out", root / "out", *extra]


def test_manifest_holds_what_users_need(built):
    m = manifest(built / "out", "yolo11n", "ort")
    art = built / "out" / "yolo11n" / "ort" / m["artifact"]["path"]
    assert hashlib.sha256(art.read_bytes()).hexdigest() == m["artifact"]["sha256"]
    assert m["recipe"]["export"]["imgsz"] == [256, 256]
    assert m["gates"]["parity"]["passed"] is True
    assert m["gates"]["parity"]["figures"]["outputs"]["output0"]["box_px_max"] < 0.1
    assert m["output_kinds"]["output0"]["kind"] == "raw_head"
    assert [g["name"] for g in m["output_kinds"]["output0"]["groups"]] == ["box", "class_scores"]
    assert {"yolo11n:export:ultralytics", "yolo11n:fix:chain", "yolo11n:compile:ort"} <= set(m["steps"])
    assert all(len(k) == 64 for k in m["steps"].values())
    assert m["tools"]["torch"] == "2.14.1" and m["tools"]["onnxruntime"]
    assert m["inputs"] == [{"name": "images", "shape": [1, 3, 256, 256], "dtype": "float32"}]
    assert m["outputs"][0]["name"] == "output0"
    assert m["preprocess"]["scale"] == pytest.approx(1 / 255)
    assert m["source"]["init"] == "synthetic"
    assert m["target_facts"]["session_options"]["providers"] == ["CPUExecutionProvider"]


def test_second_build_runs_no_step(built, cli):
    code, out, _ = cli(*args(built))
    assert code == 0
    statuses = step_lines(out)
    assert statuses and set(statuses.values()) == {"cached"}, out


def test_deleted_build_dir_is_restored_from_cache(built, cli):
    shutil.rmtree(built / "out")
    code, out, _ = cli(*args(built))
    assert code == 0
    statuses = step_lines(out)
    assert statuses["yolo11n:export:ultralytics"] == "cached"
    assert statuses["yolo11n:publish:ort"] == "ran"
    assert (built / "out" / "yolo11n" / "ort" / "model.onnx").is_file()


def test_gate_tolerance_override_reruns_only_that_gate(built, cli):
    code, out, _ = cli(*args(built, "gates.parity.atol=0.12"))
    assert code == 0
    ran = {t for t, s in step_lines(out).items() if s == "ran"}
    assert ran == {"yolo11n:gate:ort.parity", "yolo11n:publish:ort"}, out


def test_opset_override_reruns_export_and_everything_after(built, cli):
    code, out, _ = cli(*args(built, "export.opset=18"))
    assert code == 0, out
    statuses = step_lines(out)
    assert all(s == "ran" for s in statuses.values()), out
    assert manifest(built / "out", "yolo11n", "ort")["recipe"]["export"]["opset"] == 18


def test_plan_shows_keys_and_cache_state(built, cli):
    code, out, _ = cli("plan", RECIPES / "yolo11n.yaml", SMALL, "--cache", built / "cache")
    assert code == 0
    lines = [line.split() for line in out.splitlines()]
    assert lines[0][0] == "cached" and len(lines[0][1]) == 64 and lines[0][2] == "yolo11n:export:ultralytics"


def test_failed_gate_blocks_publishing(built, cli, tmp_path):
    out_dir = tmp_path / "out"
    code, out, err = cli(
        "build",
        RECIPES / "yolo11n.yaml",
        SMALL,
        "gates.parity.box_px=1e-9",
        "--cache",
        built / "cache",
        "--out",
        out_dir,
    )
    assert code == 1
    assert "gate parity failed: output0" in out and "group box" in out and "box_px 1e-09 px" in out
    assert not (out_dir / "yolo11n" / "ort").exists()


def test_webgpu_without_chromium_is_unverified_never_passed(tmp_path, cli, monkeypatch):
    """No browser here: the artifact builds, the browser gate says why it did not run, nothing is
    published, and --require turns that into a failure."""
    monkeypatch.setenv("RECIPEKIT_CHROMIUM", str(tmp_path / "no-chromium"))
    common = [
        RECIPES / "yolo11n-pose-webgpu.yaml",
        "export.imgsz=192",
        "--cache",
        tmp_path / "c",
        "--out",
        tmp_path / "o",
    ]
    code, out, _ = cli("build", *common)
    assert (
        code == 0
        and "yolo11n-pose-webgpu/webgpu: unverified (not published, gates did not run here: webgpu-browser:" in out
    )
    assert "no-chromium" in out and not (tmp_path / "o" / "yolo11n-pose-webgpu" / "webgpu").exists()
    code, out, _ = cli("build", *common, "--require")
    assert code == 1 and "required gates did not run" in out
