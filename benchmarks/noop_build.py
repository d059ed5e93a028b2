"""No-op build of the default recipe, this tree side by side with a reference commit (one run).

Goal (issue 12): a no-op build of recipes/yolo11n.yaml under 0.6 s, importing neither torch nor
onnxruntime. Both trees are built cold once into their own cache, then timed as a user runs them
(whole process, bytecode cached: PYTHONDONTWRITEBYTECODE is unset). Prints a table of medians.

    .venv/bin/python benchmarks/noop_build.py [--runs 7] [--reference 9320bdc] [--imgsz 640]
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
PROBE = (
    "import runpy, sys; sys.argv = ['recipekit'] + sys.argv[1:]\n"
    "try: runpy.run_module('recipekit', run_name='__main__')\n"
    "except SystemExit: pass\n"
    "print('HEAVY:' + ','.join(m for m in ('torch', 'onnxruntime', 'onnx', 'ultralytics') if m in sys.modules))"
)


def reference_tree(ref: str, dest: Path) -> Path:
    """The reference commit's files (git archive), importable through PYTHONPATH."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def env_for(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": str(tree)}


def build_cmd(tree: Path, work: Path, imgsz: int) -> list[str]:
    recipe = tree / "recipes" / "yolo11n.yaml"
    return [sys.executable, "-m", "recipekit", "build", str(recipe), f"export.imgsz={imgsz}", "-q",
            "--cache", str(work / "cache"), "--out", str(work / "out")]  # fmt: skip


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def heavy(cmd: list[str], env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, *cmd[3:]], env=env, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.startswith("HEAVY:")][-1][6:] or "none"


def measure(name: str, tree: Path, work: Path, runs: int, imgsz: int) -> tuple[str, float, float, str]:
    env, cmd = env_for(tree), build_cmd(tree, work, imgsz)
    cold = timed(cmd, env)  # the cold build (and bytecode written)
    times = sorted(timed(cmd, env) for _ in range(runs))
    print(f"  {name}: cold {cold:.1f} s, no-op runs {', '.join(f'{t:.2f}' for t in times)}", file=sys.stderr)
    return name, statistics.median(times), times[0], heavy(cmd, env)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--reference", default="9320bdc", help="commit to compare with (default: main before issue 12)")
    ap.add_argument("--imgsz", type=int, default=640)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rk-bench-noop-"))
    try:
        ref = reference_tree(args.reference, work / "ref")
        rows = [
            measure(f"reference {args.reference}", ref, work / "ref-run", args.runs, args.imgsz),
            measure("this tree", ROOT, work / "run", args.runs, args.imgsz),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"no-op build of recipes/yolo11n.yaml (imgsz {args.imgsz}), {args.runs} runs, goal < 0.6 s")
    print(f"| {'tree':<22} | median s | best s | heavy modules imported |")
    print(f"| {'-' * 22} | -------: | -----: | ---------------------- |")
    for name, med, best, mods in rows:
        print(f"| {name:<22} | {med:8.3f} | {best:6.3f} | {mods:<22} |")


if __name__ == "__main__":
    main()
