"""`recipekit matrix` cold at -j 1 and -j 2, and a fully cached second run: this tree side by side with
the tree before the task graph ran on doit (`--reference`), alternating run by run.

Goals: -j 2 of this tree at most 1.05x the reference's (issue 23: doit's process runner as fast as
the pool it replaced); a second run of the same matrix (all cached) in at most 1 s. Whole processes,
imports included. The load average is printed beside the table: on a shared machine the figures
mean little.

    .venv/bin/python benchmarks/matrix_times.py [--runs 3] [--imgsz 320] [--reference bc974d7]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reference import ROOT, arguments, env_for, load, reference_tree

RECIPES = ["recipes/yolo11n.yaml", "recipes/yolo11n-seg-b4.yaml"]


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds of one whole run; a run whose cells fail (a gate) still did all its steps' work."""
    t0 = time.perf_counter()
    code = subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=env)
    if code.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {code.returncode}")
    return time.perf_counter() - t0


def main() -> None:
    ap = arguments(runs=3, imgsz=320)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rk-matrix-"))
    trees = {"reference": reference_tree(args.reference, work / "ref"), "this tree": ROOT}
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.runs):
        for jobs in ("1", "2"):
            for name, tree in trees.items():
                run = work / f"run-{name.split()[0]}"
                base = [sys.executable, "-m", "recipekit", "matrix", *RECIPES, "--targets", "ort"]
                base += [f"export.imgsz={args.imgsz}", "--cache", str(run / "cache"), "--out", str(run / "out"), "-q"]
                shutil.rmtree(run, ignore_errors=True)
                results.setdefault((name, f"-j {jobs} (cold)"), []).append(
                    timed([*base, "-j", jobs], env_for(tree), tree)
                )
                if jobs == "2":
                    second = timed([*base, "-j", jobs], env_for(tree), tree)
                    results.setdefault((name, "second run (all cached)"), []).append(second)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\nmatrix {' '.join(RECIPES)} x ort at imgsz {args.imgsz}, median of {args.runs} runs (load {load()})\n")
    print(f"| {'what':<26} | reference {args.reference} s | this tree s | this / reference |")
    print(f"|{'-' * 28}|{'-' * 22}|{'-' * 13}|{'-' * 18}|")
    for what in ("-j 1 (cold)", "-j 2 (cold)", "second run (all cached)"):
        ref, here = med[("reference", what)], med[("this tree", what)]
        print(f"| {what:<26} | {ref:20.3f} | {here:11.3f} | {here / ref:16.2f} |")
    for name in trees:
        print(f"speed-up -j 2 over -j 1, {name}: {med[(name, '-j 1 (cold)')] / med[(name, '-j 2 (cold)')]:.2f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
