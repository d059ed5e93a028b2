"""`recipekit matrix` with -j 2 against -j 1 on independent cells, and a fully cached second run.

Goals (issues: matrix, 17): -j 2 at least 1.7x faster than -j 1 on independent cold cells (with
-j 2 the steps run on two pre-loaded worker processes, graph/executors/local.py); a second run of
the same matrix (all cached) in at most 1 s. Whole processes, imports included. The load average
is printed beside the table: on a shared machine the figures mean little.

    .venv/bin/python benchmarks/matrix_times.py [--runs 3] [--imgsz 320]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ["recipes/yolo11n.yaml", "recipes/yolo11n-seg-b4.yaml"]


def timed(cmd: list[str]) -> float:
    """Seconds of one whole run; a run whose cells fail (a gate) still did all its steps' work."""
    t0 = time.perf_counter()
    code = subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT).returncode
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {code}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--imgsz", type=int, default=320)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rk-matrix-"))
    base = [
        sys.executable,
        "-m",
        "recipekit",
        "matrix",
        *RECIPES,
        "--targets",
        "ort",
        f"export.imgsz={args.imgsz}",
        "--cache",
        str(work / "cache"),
        "--out",
        str(work / "out"),
        "-q",
    ]
    results: dict[str, list[float]] = {"-j 1 (cold)": [], "-j 2 (cold)": [], "second run (all cached)": []}
    for _ in range(args.runs):
        for jobs in ("1", "2"):
            shutil.rmtree(work, ignore_errors=True)
            results[f"-j {jobs} (cold)"].append(timed([*base, "-j", jobs]))
        results["second run (all cached)"].append(timed([*base, "-j", "2"]))
    med = {k: statistics.median(v) for k, v in results.items()}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nmatrix {' '.join(RECIPES)} x ort at imgsz {args.imgsz}, median of {args.runs} runs (load {load})\n")
    print(f"| {'what':<26} | {'seconds':>8} |")
    print(f"|{'-' * 28}|{'-' * 10}|")
    for name, secs in med.items():
        print(f"| {name:<26} | {secs:8.3f} |")
    print(f"\nspeed-up -j 2 over -j 1: {med['-j 1 (cold)'] / med['-j 2 (cold)']:.2f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
