"""Build times, measured side by side in one run (medians of several runs); prints a table.

Goals (issue 23, the task graph on doit): cold build without gates <= 1.05x a raw Ultralytics export
of the same model; no-op build <= 0.3 s; `recipekit --help` imports neither doit nor torch. The
reference tree (main before doit, `--reference`) is timed beside this one. Every figure is a whole
process, imports included, as a user runs it (bytecode cached); CPU seconds beside wall seconds (a
busy machine stretches wall time).

    .venv/bin/python benchmarks/build_times.py [--runs 3] [--imgsz 640] [--reference bc974d7]
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

RECIPE = ROOT / "recipes" / "yolo11n.yaml"
HELP_PROBE = (  # printed at exit: the command ends its own process (atexit handlers run)
    "import atexit, runpy, sys; sys.argv = ['recipekit', '--help']\n"
    "atexit.register(lambda: print('IMPORTED:' + (\n"
    "    ','.join(m for m in ('doit', 'torch') if m in sys.modules) or 'neither doit nor torch')))\n"
    "runpy.run_module('recipekit', run_name='__main__')"
)
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


def timed(cmd: list[str], before=None, env=None) -> float:
    if before:
        before()
    c0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd_of(env), env=env)
    return time.perf_counter() - t0, _children_cpu() - c0


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes: what a run cost on a shared machine."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def median(runs: int, cmd: list[str], before=None, env=None) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds of `runs` runs."""
    samples = [timed(cmd, before, env) for _ in range(runs)]
    return statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples)


def medians(runs: int, *cases: tuple) -> list[tuple[float, float]]:
    """`median` of each (cmd, before, env) case, the cases alternating run by run (the same load)."""
    samples: list[list[tuple[float, float]]] = [[] for _ in cases]
    for _ in range(runs):
        for i, (cmd, before, env) in enumerate(cases):
            samples[i].append(timed(cmd, before, env))
    return [(statistics.median(w for w, _ in s), statistics.median(c for _, c in s)) for s in samples]


def recipe_gates() -> list[str]:
    """The gates the benchmarked recipe runs (its own section; the recipe has no target-level gates)."""
    import yaml

    return list((yaml.safe_load(RECIPE.read_text()) or {}).get("gates") or {})


def build_cmd(tree: Path, cache: Path, out: Path, imgsz: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "recipekit",
        "build",
        str(tree / "recipes" / "yolo11n.yaml"),
        f"export.imgsz={imgsz}",
        "source.init=random",
        "gates.parity.atol=1",
        "gates.parity.min_score=0",  # random weights score nothing near the default: compare every candidate
        "--cache",
        str(cache),
        "--out",
        str(out),
        "-q",
    ]


def main() -> None:
    ap = arguments(runs=3, imgsz=640)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rk-bench-"))
    cache, out = work / "cache", work / "out"
    ref_tree = reference_tree(args.reference, work / "ref")
    here, there = env_for(ROOT), env_for(ref_tree)
    build = build_cmd(ROOT, cache, out, args.imgsz)
    ref_build = build_cmd(ref_tree, work / "ref-cache", work / "ref-out", args.imgsz)
    fresh = lambda: [shutil.rmtree(p, ignore_errors=True) for p in (cache, out)]  # noqa: E731
    ref_fresh = lambda: [shutil.rmtree(work / p, ignore_errors=True) for p in ("ref-cache", "ref-out")]  # noqa: E731
    raw = [sys.executable, "-c", RAW_EXPORT.format(imgsz=args.imgsz)]
    no_gates = [f"gates.{g}.skip=benchmark" for g in recipe_gates()]  # every gate (and so the golden step)
    cold = medians(
        args.runs, (raw, None, here), ([*build, *no_gates], fresh, here), ([*ref_build, *no_gates], ref_fresh, there)
    )
    rows = [("raw Ultralytics export (same model, seeded)", cold[0])]
    rows.append(("cold build, gates excluded", cold[1]))
    rows.append((f"  reference {args.reference}", cold[2]))
    rows.append(("cold build, gates included", median(args.runs, build, fresh, here)))
    rows.append(
        ("rebuild from cache after rm -rf build/", median(args.runs, build, lambda: shutil.rmtree(out, True), here))
    )
    timed(ref_build, env=there)
    noop = medians(args.runs + 2, (build, None, here), (ref_build, None, there))
    rows += [("no-op build", noop[0]), (f"  reference {args.reference}", noop[1])]
    rows.append(("recipekit --help", median(args.runs + 2, [sys.executable, "-m", "recipekit", "--help"], env=here)))
    probe = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, env=here).stdout
    raw_s, raw_cpu = rows[0][1]
    runs = f"median of {args.runs} runs (no-op and --help: {args.runs + 2})"
    print(f"\nyolo11n at imgsz {args.imgsz}, {runs}; load {load()}\n")
    print(f"| {'what':<44} | {'seconds':>8} | {'x raw export':>12} | {'CPU s':>7} | {'CPU x raw':>9} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 14}|{'-' * 9}|{'-' * 11}|")
    for name, (secs, cpu) in rows:
        print(f"| {name:<44} | {secs:8.3f} | {secs / raw_s:12.2f} | {cpu:7.2f} | {cpu / raw_cpu:9.2f} |")
    imported = [line for line in probe.splitlines() if line.startswith("IMPORTED:")][-1].removeprefix("IMPORTED:")
    print(f"\nrecipekit --help imported: {imported}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
