"""Reproducible releases: two clean builds compared byte for byte; verify catches every tampering."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from helpers.common import RECIPES

pytestmark = pytest.mark.slow


def release(root, version="1.0.0"):
    cmd = [
        sys.executable,
        "-m",
        "recipekit",
        "release",
        str(RECIPES / "yolo11n.yaml"),
        str(RECIPES / "yolov10n-dynamic.yaml"),
        "--targets",
        "ort",
        "export.imgsz=192",
        "--version",
        version,
        "--dist",
        str(root / "dist"),
        "--cache",
        str(root / "cache"),
        "--out",
        str(root / "out"),
        "-q",
        "--archive",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    roots = [tmp_path_factory.mktemp(n) for n in ("a", "b")]
    for root in roots:
        proc = release(root)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return [root / "dist" / "1.0.0" for root in roots]


def test_two_clean_builds_are_byte_identical(two):
    a, b = two
    assert (a / "SHA256SUMS").read_text() == (b / "SHA256SUMS").read_text()
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert {f.name for f in files} >= {"model.onnx", "manifest.json", "tools.lock.json", "release.json", "yolo11n.yaml"}
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a.parent / "1.0.0.tar.gz").read_bytes() == (b.parent / "1.0.0.tar.gz").read_bytes()


def test_release_holds_what_it_promises(two):
    a = two[0]
    doc = json.loads((a / "release.json").read_text())
    assert {(c["recipe"], c["target"]) for c in doc["cells"]} == {("yolo11n", "ort"), ("yolov10n-dynamic", "ort")}
    assert json.loads((a / "reports" / "yolo11n.ort.json").read_text())["gates"]["parity"]["passed"] is True
    assert json.loads((a / "tools.lock.json").read_text())["onnx"]


def verify(dest, *extra):
    return subprocess.run(
        [sys.executable, "-m", "recipekit", "verify", str(dest), *extra], capture_output=True, text=True, check=False
    )


def test_verify_passes_on_fresh_release_and_rebuilds_identically(two):
    proc = verify(two[0], "--rebuild")
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("tamper", ["altered", "missing", "manifest", "extra"])
def test_verify_fails_on_tampering(two, tmp_path, tamper):
    dest = tmp_path / "1.0.0"
    shutil.copytree(two[0], dest)
    target = dest / "yolo11n" / "ort"
    if tamper == "altered":
        (target / "model.onnx").write_bytes((target / "model.onnx").read_bytes()[:-1] + b"\0")
        named = "yolo11n/ort/model.onnx"
    elif tamper == "missing":
        (target / "model.onnx").unlink()
        named = "yolo11n/ort/model.onnx: missing"
    elif tamper == "manifest":
        doc = json.loads((target / "manifest.json").read_text())
        doc["gates"]["parity"]["passed"] = True
        doc["status"] = "passed-edited"
        (target / "manifest.json").write_text(json.dumps(doc))
        named = "yolo11n/ort/manifest.json"
    else:
        (target / "backdoor.onnx").write_bytes(b"x")
        named = "yolo11n/ort/backdoor.onnx: not listed"
    proc = verify(dest)
    assert proc.returncode == 1 and named in proc.stdout, proc.stdout


def test_release_refuses_a_cell_whose_gates_failed(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "recipekit",
        "release",
        str(RECIPES / "yolo11n.yaml"),
        "--targets",
        "ort",
        "export.imgsz=192",
        "gates.parity.box_px=1e-9",
        "gates.parity.score_abs=1e-9",
        "--version",
        "2.0",
        "--dist",
        str(tmp_path / "dist"),
        "--cache",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "out"),
        "-q",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "release refused" in proc.stderr and "yolo11n/ort: failed" in proc.stderr
    assert not (tmp_path / "dist" / "2.0").exists()
