"""`recipekit matrix --scheduler` on a real Dask cluster (a scheduler and worker processes on
127.0.0.1), files travelling through a real S3-protocol server (moto_server) via s3fs.

One worker is started with `--resources trt=1` as a label only (no TensorRT here): the trt cells
reach it and report `unavailable` for lack of TensorRT, not for lack of a worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.common import RECIPES, step_lines
from helpers.servers import S3_ENV, DaskCluster, moto_s3

CELLS = [str(RECIPES / "yolo11n.yaml"), str(RECIPES / "yolov10n-dynamic.yaml")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    with moto_s3(folder) as endpoint:
        env = {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        import s3fs

        s3fs.S3FileSystem(skip_instance_cache=True).mkdir("bucket")
        dask = DaskCluster(folder, env)
        try:
            dask.start_scheduler()
            dask.start_worker("cpu")
            dask.start_worker("gpu", resources="trt=1")
            dask.wait_workers(2)
            yield dask
        finally:
            dask.close()
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def matrix_cmd(tmp: Path, cluster: DaskCluster, prefix: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "recipekit",
        "matrix",
        *CELLS,
        "--targets",
        "ort,trt",
        "--no-latency",
        "--scheduler",
        cluster.address,
        "--remote-cache",
        f"s3://bucket/{prefix}",
        "--cache",
        str(tmp / "client-cache"),
        "--out",
        str(tmp / "out"),
        *extra,
    ]


def run(cmd: list[str]) -> tuple[int, str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def built_here(cluster: DaskCluster) -> dict[str, int]:
    """key -> how many worker caches built it (not fetched from the remote cache)."""
    counts: dict[str, int] = {}
    for meta in cluster.folder.glob("cache-*/objects/*/*/meta.json"):
        doc = json.loads(meta.read_text())
        if doc.get("origin") != "remote":
            counts[doc["key"]] = counts.get(doc["key"], 0) + 1
    return counts


def matrix_json(tmp: Path) -> dict[str, dict]:
    doc = json.loads((tmp / "report" / "matrix.json").read_text())
    return {f"{c['recipe']}/{c['target']}": c for c in doc["cells"]}


@pytest.mark.slow
def test_matrix_on_cluster_each_step_once_trt_on_its_worker(cluster, tmp_path):
    code, out = run(matrix_cmd(tmp_path, cluster, "c1", "--report", str(tmp_path / "report")))
    assert code == 0, out
    cells = matrix_json(tmp_path)
    assert {k: c["status"] for k, c in cells.items()} == {
        "yolo11n/ort": "passed",
        "yolov10n-dynamic/ort": "passed",
        "yolo11n/trt": "unavailable",
        "yolov10n-dynamic/trt": "unavailable",
    }
    assert "TensorRT" in cells["yolo11n/trt"]["reason"] and "no worker" not in cells["yolo11n/trt"]["reason"]
    lines = step_lines(out)
    compile_trt = next(line for line in out.splitlines() if "yolo11n:compile:trt" in line)
    assert "on gpu" in compile_trt  # the step ran on the worker offering trt
    ran = [t for t, s in lines.items() if s == "ran"]
    assert any("on cpu" in line for line in out.splitlines()) and len(ran) >= 10
    counts = built_here(cluster)
    assert counts and set(counts.values()) == {1}  # each step ran once in the whole cluster
    assert (tmp_path / "out" / "yolo11n" / "ort" / "manifest.json").is_file()


@pytest.mark.slow
def test_worker_killed_mid_run_step_retried_elsewhere(cluster, tmp_path):
    cmd = matrix_cmd(tmp_path, cluster, "c2", "export.imgsz=192")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    victim = None
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        for name in ("cpu", "gpu"):
            if list((cluster.folder / f"cache-{name}" / "tmp").glob("*")):
                victim = name  # mid-step: its cache has a step's temporary folder
        time.sleep(0.05)
    assert victim is not None, "no worker started a step"
    time.sleep(0.3)
    cluster.kill_worker(victim)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    lines = step_lines(out)
    assert lines["yolo11n:publish:ort"] == "ran" and lines["yolov10n-dynamic:publish:ort"] == "ran", out
    manifest = json.loads((tmp_path / "out" / "yolo11n" / "ort" / "manifest.json").read_text())
    assert manifest["status"] == "passed"
    from recipekit.cache.remote import RemoteCache

    remote = RemoteCache("s3://bucket/c2")
    keys = list(remote.keys())
    assert keys and all(remote.verify(k) is None for k in keys)  # nothing half-written is an entry
    cluster.start_worker(victim, resources="trt=1" if victim == "gpu" else None)
    cluster.wait_workers(2)


@pytest.mark.slow
def test_resource_no_worker_offers_is_unavailable_at_once(cluster, tmp_path):
    cluster.kill_worker("gpu")
    try:
        t0 = time.monotonic()
        cmd = [*matrix_cmd(tmp_path, cluster, "c1", "--report", str(tmp_path / "report")), "--targets", "trt"]
        code, out = run(cmd)
        elapsed = time.monotonic() - t0
        assert code == 0, out
        cells = matrix_json(tmp_path)
        assert {c["status"] for c in cells.values()} == {"unavailable"}
        assert all("needs resource trt" in c["reason"] and "no worker" in c["reason"] for c in cells.values())
        assert elapsed < 120  # reported, not waited for
    finally:
        cluster.start_worker("gpu", resources="trt=1")
        cluster.wait_workers(2)


def test_scheduler_without_remote_cache_is_exit_2(cli, tmp_path):
    code, out, err = cli("matrix", CELLS[0], "--scheduler", "tcp://127.0.0.1:1", "--cache", str(tmp_path))
    assert code == 2 and "--remote-cache" in err and "Traceback" not in err
    code, out, err = cli("matrix", CELLS[0], "--scheduler", "127.0.0.1", "--remote-cache", str(tmp_path / "r"))
    assert code == 2 and "tcp://HOST:PORT" in err


@pytest.mark.slow
def test_warm_worker_caches_upload_to_an_empty_remote_and_machine_b_builds_nothing(cluster, tmp_path):
    """Files always travel: a worker that finds a step's entry in its own cache makes sure the remote
    cache holds it before reporting the step. With the workers' caches warm and a new remote cache,
    the build passes, and another machine then builds from that remote with no step run."""
    from recipekit.cache.remote import RemoteCache

    one = [str(RECIPES / "yolo11n.yaml"), "export.imgsz=160", "--targets", "ort", "--no-latency", "--json"]

    def on_cluster(prefix: str, client: str) -> dict[str, str]:
        cmd = [sys.executable, "-m", "recipekit", "matrix", *one, "--scheduler", cluster.address]
        cmd += ["--remote-cache", f"s3://bucket/{prefix}", "--cache", str(tmp_path / client)]
        code, out = run([*cmd, "--out", str(tmp_path / client / "out")])
        assert code == 0, out
        return {e["task"]: e["status"] for e in map(json.loads, out.splitlines()) if e.get("event") == "step-finished"}

    on_cluster("warm-1", "client-1")  # the workers' own caches now hold every step
    second = on_cluster("warm-2", "client-2")  # a new, empty remote cache and a new client
    assert second["yolo11n:publish:ort"] == "ran"
    built = {k for k in RemoteCache("s3://bucket/warm-2").keys()}
    assert len(built) == len(second) - 1  # every step's entry but the publish's (it has none)
    cmd = [sys.executable, "-m", "recipekit", "matrix", *one, "--remote-cache", "s3://bucket/warm-2"]
    code, out = run([*cmd, "--cache", str(tmp_path / "machine-b"), "--out", str(tmp_path / "machine-b" / "out")])
    assert code == 0, out
    machine_b = {e["task"]: e["status"] for e in map(json.loads, out.splitlines()) if e.get("event") == "step-finished"}
    assert machine_b.pop("yolo11n:publish:ort") == "ran"  # publishing writes machine B's own output folder
    assert set(machine_b.values()) == {"cached"}, machine_b  # no step ran: all from the remote cache
