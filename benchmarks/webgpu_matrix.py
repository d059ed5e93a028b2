#!/usr/bin/env python3
"""Every recipe x (ort, webgpu) in one `recipekit matrix -j 2`, cold (a fresh cache), timed; then a table per
webgpu cell: status, bundle, browser-gate status and seconds, and whether its browser run was exercised.

Goals (issue 28): the whole matrix in <= 12 min with 0 skipped browser runs, every webgpu cell passed on the
default bundle. Reference, printed beside it: 14 min 22 s with 2 browser runs skipped (before, quiet
machine). The load average is printed too: on a shared machine the time means little. The matrix.json,
matrix.md and matrix.html are kept in --report. Usage:
    .venv/bin/python benchmarks/webgpu_matrix.py [--jobs 2] [--report out/webgpu-matrix] [recipes ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = {"seconds": 14 * 60 + 22, "skipped": 2, "cells": 34}
GOAL_S = 12 * 60


def run(recipes: list[str], jobs: int, report: Path, cache: Path, out: Path) -> tuple[int, float, str]:
    cmd = [sys.executable, "-m", "recipekit", "matrix", *recipes, "--targets", "ort,webgpu", "-j", str(jobs)]
    cmd += ["--report", str(report), "--cache", str(cache), "--out", str(out), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    return proc.returncode, time.perf_counter() - t0, proc.stdout + proc.stderr


def rows(matrix: dict) -> list[dict]:
    out = []
    for cell in matrix["cells"]:
        browser = (cell.get("gates") or {}).get("webgpu-browser") or {}
        figures = browser.get("figures") or {}
        out.append(
            {
                "cell": f"{cell['recipe']}/{cell['target']}",
                "status": cell["status"],
                "bundle": figures.get("bundle", "-"),
                "browser": browser.get("status", "-"),
                "browser_s": figures.get("seconds"),
                "exercised": bool(figures.get("comparisons")),
                "why": (cell.get("reason") or "")[:60],
            }
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipes", nargs="*", help="default: recipes/*.yaml")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--report", type=Path, default=ROOT / "out" / "webgpu-matrix")
    args = ap.parse_args()
    recipes = args.recipes or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "recipes").glob("*.yaml"))
    with tempfile.TemporaryDirectory(prefix="webgpu-matrix-") as tmp:
        load = os.getloadavg()[0]
        code, seconds, log = run(recipes, args.jobs, args.report, Path(tmp) / "cache", Path(tmp) / "out")
    path = args.report / "matrix.json"
    if not path.is_file():
        print(log[-4000:])
        return 2
    table = rows(json.loads(path.read_text()))
    webgpu = [r for r in table if r["cell"].endswith("/webgpu")]
    skipped = sum(r["browser"] == "skipped" for r in webgpu)
    head = f"{'cell':<34} {'status':<11} {'bundle':<7} {'browser':<11} {'browser s':>9}  exercised  why"
    print(head + "\n" + "-" * len(head))
    for r in table:
        secs = f"{r['browser_s']:.0f}" if r["browser_s"] is not None else "-"
        print(f"{r['cell']:<34} {r['status']:<11} {r['bundle']:<7} {r['browser']:<11} {secs:>9}  "
              f"{'yes' if r['exercised'] else 'no':<9}  {r['why']}")  # fmt: skip
    passed = sum(r["status"] == "passed" for r in table)
    ref = REFERENCE
    print()
    print(f"{'':<28} {'this run':>14} {'reference':>14} {'goal':>10}")
    print(f"{'matrix -j ' + str(args.jobs) + ', cold':<28} {seconds / 60:>11.1f} min {ref['seconds'] / 60:>11.1f} min "
          f"{GOAL_S / 60:>7.0f} min")  # fmt: skip
    print(f"{'browser runs skipped':<28} {skipped:>14} {ref['skipped']:>14} {0:>10}")
    print(f"{'cells passed':<28} {f'{passed}/{len(table)}':>14} {ref['cells']:>14}")
    print(f"load average at start: {load:.1f} (2 cores); matrix exit code {code}; reports in {args.report}")
    return 0 if code == 0 and skipped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
