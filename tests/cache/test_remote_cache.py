"""The remote cache against a real S3-protocol server (moto_server on 127.0.0.1) through s3fs.

Each "machine" is a separate recipekit process with its own empty local cache folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.common import RECIPES, step_lines
from helpers.servers import S3_ENV, moto_s3

pytestmark = pytest.mark.slow

REMOTE = "s3://bucket/rk"
CELLS = [str(RECIPES / "yolo11n.yaml"), str(RECIPES / "yolov10n-dynamic.yaml")]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    folder = tmp_path_factory.mktemp("s3")
    with moto_s3(folder) as endpoint:
        env = {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        fs.mkdir("bucket")
        try:
            yield fs
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def machine(tmp: Path, name: str, *extra: str) -> tuple[int, str, str]:
    """`recipekit matrix` of two recipes x ort on a machine whose cache folder is tmp/<name>."""
    cmd = [
        sys.executable,
        "-m",
        "recipekit",
        "matrix",
        *CELLS,
        "--targets",
        "ort",
        "export.imgsz=160",
        "--no-latency",
        "--cache",
        str(tmp / name / "cache"),
        "--out",
        str(tmp / name / "out"),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def objects(fs) -> dict[str, str]:
    fs.invalidate_cache()
    return {p: info["ETag"] for p, info in fs.find("bucket", detail=True).items()}


def unique_blob(fs) -> tuple[str, str]:
    """(task, blob) of a yolo11n step (not the export) with a blob no other remote entry shares."""
    fs.invalidate_cache()
    metas = [json.loads(fs.cat_file(p)) for p in fs.find("bucket/rk/entries")]
    count: dict[str, int] = {}
    for meta in metas:
        for sha in meta["files"].values():
            count[sha] = count.get(sha, 0) + 1
    for meta in sorted(metas, key=lambda m: m["task"]):
        if meta["task"].startswith("yolo11n:") and ":export:" not in meta["task"]:
            for sha in meta["files"].values():
                if count[sha] == 1:
                    return meta["task"], sha
    raise AssertionError("no blob of a yolo11n step is its own")


def test_second_machine_runs_nothing_corrupt_entries_rebuilt_read_only_uploads_nothing(s3, tmp_path):
    code, out_a, err = machine(tmp_path, "a", "--remote-cache", REMOTE)
    assert code == 0, out_a + err
    ran_a = [t for t, s in step_lines(out_a).items() if s == "ran" and ":publish:" not in t]
    assert len(ran_a) >= 10
    assert "uploaded to s3://bucket/rk" in out_a
    assert "testing" not in out_a + err  # no credential in any line

    code, out_b, err = machine(tmp_path, "b", "--remote-cache", REMOTE)
    assert code == 0, out_b + err
    lines_b = step_lines(out_b)
    assert [t for t, s in lines_b.items() if s == "ran" and ":publish:" not in t] == []
    assert all(lines_b[t] == "cached" for t in ran_a)
    assert tree(tmp_path / "a" / "out") == tree(tmp_path / "b" / "out")

    # machine C: one remote object corrupted -> detected, ignored, rebuilt, the artifact unchanged
    task, blob = unique_blob(s3)
    path = f"bucket/rk/blobs/{blob[:2]}/{blob}"
    s3.pipe_file(path, b"not the model")
    code, out_c, err = machine(tmp_path, "c", "--remote-cache", REMOTE)
    assert code == 0, out_c + err
    line = next(line for line in out_c.splitlines() if line.split()[2:3] == [task])
    assert line.split()[0] == "ran" and "rejected" in line and "sha256" in line, line
    assert tree(tmp_path / "a" / "out") == tree(tmp_path / "c" / "out")
    assert s3.cat_file(path) != b"not the model"  # the rebuilt entry was uploaded again

    # machine D, read-only (an untrusted fork's CI): fetches, rebuilds what is bad, uploads nothing
    s3.pipe_file(path, b"corrupt again")
    before = objects(s3)
    code, out_d, err = machine(tmp_path, "d", "--remote-cache", REMOTE, "--remote-cache", "read-only")
    assert code == 0, out_d + err
    assert step_lines(out_d)[task] == "ran"
    assert step_lines(out_d)["yolov10n-dynamic:export:ultralytics"] == "cached"
    assert "uploaded" not in out_d
    assert objects(s3) == before
    assert tree(tmp_path / "a" / "out") == tree(tmp_path / "d" / "out")

    # recipekit cache on the remote: verify finds the corrupt blob, --repair drops its entry, gc by size
    def cache(*args: str) -> tuple[int, str]:
        cmd = [sys.executable, "-m", "recipekit", "cache", *args, "--remote-cache", REMOTE]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
        return proc.returncode, proc.stdout + proc.stderr

    code, out = cache("verify")
    assert code == 1 and "CORRUPT" in out and "sha256" in out, out
    assert cache("verify", "--repair")[0] == 1 and cache("verify")[0] == 0
    code, out = cache("ls")
    assert code == 0 and "yolov10n-dynamic" in out and "export:ultralytics" in out
    assert "total" in cache("du")[1]
    code, out = cache("gc", "--max-size", "5M")
    assert code == 0 and "removed" in out, out
    fs = s3
    fs.invalidate_cache()
    metas = [json.loads(fs.cat_file(p)) for p in fs.find("bucket/rk/entries")]
    named = {sha for m in metas for sha in m["files"].values()}
    assert sum(fs.info(f"bucket/rk/blobs/{s[:2]}/{s}")["size"] for s in named) <= 5 * 2**20
