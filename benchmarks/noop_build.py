"""No-op build of the default recipe, this tree side by side with a reference commit (one run).

Goals: a no-op build of recipes/yolo11n.yaml importing neither torch nor onnxruntime (issue 12),
at most 0.3 s and 1.15x the tree before the task graph ran on doit (issue 23; the default
reference). Both trees are built cold once into their own cache, then timed as a user runs them
(whole process, bytecode cached: PYTHONDONTWRITEBYTECODE is unset), alternating. Prints medians.

    .venv/bin/python benchmarks/noop_build.py [--runs 9] [--reference bc974d7] [--imgsz 640] [--jobs 1]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reference import ROOT, arguments, cwd_of, env_for, load, reference_tree

PROBE = (  # printed at exit: the command ends its own process (atexit handlers run)
    "import atexit, runpy, sys; sys.argv = ['recipekit'] + sys.argv[1:]\n"
    "atexit.register(lambda: print('HEAVY:' + ','.join(\n"
    "    m for m in ('torch', 'onnxruntime', 'onnx', 'ultralytics', 'doit') if m in sys.modules)))\n"
    "runpy.run_module('recipekit', run_name='__main__')"
)


def build_cmd(tree: Path, work: Path, imgsz: int, jobs: int) -> list[str]:
    recipe = tree / "recipes" / "yolo11n.yaml"
    return [sys.executable, "-m", "recipekit", "build", str(recipe), f"export.imgsz={imgsz}", "-q", "-j", str(jobs),
            "--cache", str(work / "cache"), "--out", str(work / "out")]  # fmt: skip


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd_of(env))
    return time.perf_counter() - t0


def heavy(cmd: list[str], env: dict[str, str]) -> str:
    probe = [sys.executable, "-c", PROBE, *cmd[3:]]
    out = subprocess.run(probe, env=env, capture_output=True, text=True, cwd=cwd_of(env)).stdout
    return [line for line in out.splitlines() if line.startswith("HEAVY:")][-1][6:] or "none"


def main() -> None:
    ap = arguments(runs=9, imgsz=640)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rk-bench-noop-"))
    try:
        trees = {f"reference {args.reference}": reference_tree(args.reference, work / "ref"), "this tree": ROOT}
        cmds = {name: (env_for(tree), build_cmd(tree, work / name.split()[0], args.imgsz, args.jobs))
                for name, tree in trees.items()}  # fmt: skip
        for name, (env, cmd) in cmds.items():
            print(f"  {name}: cold build {timed(cmd, env):.1f} s", file=sys.stderr)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(args.runs):  # alternating, so both see the same load
            for name, (env, cmd) in cmds.items():
                times[name].append(timed(cmd, env))
        rows = [(name, statistics.median(t), min(t), heavy(*cmds[name][::-1])) for name, t in times.items()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ref = rows[0][1]
    print(f"no-op build of recipes/yolo11n.yaml (imgsz {args.imgsz}, -j {args.jobs}), {args.runs} runs, load {load()}")
    print("goal: <= 0.3 s and <= 1.15x the reference")
    print(f"| {'tree':<22} | median s | best s | x reference | of torch, onnxruntime, onnx, ultralytics, doit: |")
    print(f"| {'-' * 22} | -------: | -----: | ----------: | {'-' * 47} |")
    for name, med, best, mods in rows:
        print(f"| {name:<22} | {med:8.3f} | {best:6.3f} | {med / ref:11.2f} | {mods:<47} |")


if __name__ == "__main__":
    main()
