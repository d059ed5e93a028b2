"""Build times, measured side by side in one run (medians of several runs); prints a table.

Goals (issue: core): no-op build <= 0.6 s; `recipekit --help` <= 0.25 s; cold build without gates
<= 1.1x a raw Ultralytics export of the same model. Every figure is a whole process, imports
included, as a user runs it; CPU seconds beside wall seconds (a busy machine stretches wall time).

    .venv/bin/python benchmarks/build_times.py [--runs 3] [--imgsz 640]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "yolo11n.yaml"
RAW_EXPORT = """
import os, tempfile, torch
os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false")
os.environ.update(YOLO_CONFIG_DIR=tempfile.mkdtemp(), MPLCONFIGDIR=tempfile.mkdtemp())
from ultralytics import YOLO
torch.manual_seed(0)
m = YOLO("yolo11n.yaml")
m.model.pt_path = os.path.join(tempfile.mkdtemp(), "m.pt")
m.export(format="onnx", imgsz={imgsz}, opset=17, simplify=False, verbose=False)
"""


def timed(cmd: list[str], before=None) -> float:
    if before:
        before()
    c0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - t0, _children_cpu() - c0


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes: what a run cost on a shared machine."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def median(runs: int, cmd: list[str], before=None) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds of `runs` runs."""
    samples = [timed(cmd, before) for _ in range(runs)]
    return statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples)


def recipe_gates() -> list[str]:
    """The gates the benchmarked recipe runs (its own section; the recipe has no target-level gates)."""
    import yaml

    return list((yaml.safe_load(RECIPE.read_text()) or {}).get("gates") or {})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--imgsz", type=int, default=640)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rk-bench-"))
    cache, out = work / "cache", work / "out"
    rk = [sys.executable, "-m", "recipekit"]
    build = [
        *rk,
        "build",
        str(RECIPE),
        f"export.imgsz={args.imgsz}",
        "source.init=random",
        "gates.parity.atol=1",
        "--cache",
        str(cache),
        "--out",
        str(out),
        "-q",
    ]
    fresh = lambda: shutil.rmtree(work, ignore_errors=True)  # noqa: E731
    rows = [
        (
            "raw Ultralytics export (same model, seeded)",
            median(args.runs, [sys.executable, "-c", RAW_EXPORT.format(imgsz=args.imgsz)]),
        )
    ]
    no_gates = [f"gates.{g}.skip=benchmark" for g in recipe_gates()]  # every gate (and so the golden step)
    rows.append(("cold build, gates excluded", median(args.runs, [*build, *no_gates], fresh)))
    rows.append(("cold build, gates included", median(args.runs, build, fresh)))
    rows.append(
        (
            "rebuild from cache after rm -rf build/",
            median(args.runs, build, lambda: shutil.rmtree(out, ignore_errors=True)),
        )
    )
    rows.append(("no-op build", median(args.runs + 2, build)))
    rows.append(("recipekit --help", median(args.runs + 2, [*rk, "--help"])))
    raw, raw_cpu = rows[0][1]
    print(f"\nyolo11n at imgsz {args.imgsz}, median of {args.runs} runs (no-op and --help: {args.runs + 2})\n")
    print(f"| {'what':<44} | {'seconds':>8} | {'x raw export':>12} | {'CPU s':>7} | {'CPU x raw':>9} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 14}|{'-' * 9}|{'-' * 11}|")
    for name, (secs, cpu) in rows:
        print(f"| {name:<44} | {secs:8.3f} | {secs / raw:12.2f} | {cpu:7.2f} | {cpu / raw_cpu:9.2f} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
