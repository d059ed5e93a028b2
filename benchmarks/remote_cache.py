"""A build served by the remote cache against a cold local build (whole processes, imports included).

Starts a real S3-protocol server (moto_server on 127.0.0.1) for the run and stops it after.
  cold local build:         empty local cache, no remote cache
  cold build + upload:      empty local cache, --remote-cache s3://bench/rk (write-back)
  remote hit (new machine): empty local cache, everything fetched from the remote cache and verified
  local hit (no-op):        the same command again

    .venv/bin/python benchmarks/remote_cache.py [--runs 3] [--imgsz 320] [--recipe recipes/yolo11n.yaml]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
S3 = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def moto(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("moto_server did not start")


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    code = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env).returncode
    if code not in (0, 1):  # 1: a gate failed; the steps' work was done all the same
        raise SystemExit(f"{' '.join(cmd)} exited {code}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--recipe", default="recipes/yolo11n.yaml")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto(port)
    env = {**os.environ, **S3, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    subprocess.run([sys.executable, "-c", "import s3fs; s3fs.S3FileSystem().mkdir('bench')"], env=env, check=True)
    work = Path(tempfile.mkdtemp(prefix="rk-remote-"))
    names = ["cold local build", "cold build + upload", "remote hit (new machine)", "local hit (no-op)"]
    results: dict[str, list[float]] = {n: [] for n in names}
    try:
        for run in range(args.runs):

            def build(tag: str, remote: bool, *, _run: int = run) -> list[str]:
                cmd = [
                    sys.executable,
                    "-m",
                    "recipekit",
                    "build",
                    args.recipe,
                    f"export.imgsz={args.imgsz}",
                    "--cache",
                    str(work / tag / "cache"),
                    "--out",
                    str(work / tag / "out"),
                    "-q",
                ]
                return cmd + (["--remote-cache", f"s3://bench/rk{_run}"] if remote else [])

            results[names[0]].append(timed(build("local", False), env))
            results[names[1]].append(timed(build("a", True), env))
            results[names[2]].append(timed(build("b", True), env))
            results[names[3]].append(timed(build("b", True), env))
            shutil.rmtree(work, ignore_errors=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(
        f"\n{args.recipe} at imgsz {args.imgsz}, remote cache on moto_server (S3 protocol, 127.0.0.1), "
        f"median of {args.runs} runs (load {', '.join(f'{x:.1f}' for x in os.getloadavg())})\n"
    )
    print(f"| {'what':<26} | {'seconds':>8} |")
    print(f"|{'-' * 28}|{'-' * 10}|")
    for name, secs in med.items():
        print(f"| {name:<26} | {secs:8.3f} |")
    print(f"\nremote hit vs cold local build: {med[names[0]] / med[names[2]]:.1f}x faster")


if __name__ == "__main__":
    main()
