"""doit's own cost per task on a 200-step plan: what running recipekit's steps as doit tasks adds.

Two measurements, each printed per task:
- executed: 200 tasks shaped like recipekit's (a matrix of recipes: export -> fix -> compile -> 4
  gates -> publish) whose action does nothing, run by doit's runner in this process (-j 1) and by
  recipekit's process runner on 2 workers (-j 2): the wall time per task is all dispatch (dependency
  bookkeeping, up-to-date checks, pickling, queues, the watchdog, the reporter).
- up to date (`--real`): the ort steps of every recipe in recipes/ at imgsz 160 (about 130 steps)
  built once, then run again as a no-op through recipekit's doit executor in this process: doit's
  time is the run's wall time minus the time spent in recipekit's own callables (the cache's
  up-to-date answer, the reporter's events), which a run without doit would spend too.

    .venv/bin/python benchmarks/doit_overhead.py [--steps 200] [--real]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPENT = {"ours": 0.0}


def _timed(fn: Any) -> Any:
    def wrapper(*args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            SPENT["ours"] += time.perf_counter() - t0

    wrapper.__name__ = fn.__name__
    return wrapper


def noop_action(step: dict[str, Any], settings: dict[str, Any], skipped: dict[str, str], results: Any = None) -> dict:
    return {"status": "ran", "key": step["key"]}


def never_up_to_date(step: dict[str, Any], settings: dict[str, Any], skipped: dict[str, str]) -> bool:
    return False


def synthetic(n: int) -> tuple[list[Any], dict[str, dict[str, Any]]]:
    """`n` steps shaped like a matrix: per recipe an export -> fix -> compile -> 4 gates -> publish."""
    from recipekit.graph.plan import Step

    steps, settings = [], {}
    for r in range(n // 8 + 1):
        name = f"r{r}"
        settings[name] = {"cache": tempfile.gettempdir()}
        chain = [Step(f"{name}:export:x", "export", "x", key=f"{r:032x}e" * 2)]
        chain.append(Step(f"{name}:fix:chain", "fix", "chain", deps={"export": chain[0].task}, key=f"{r:032x}f" * 2))
        chain.append(Step(f"{name}:compile:ort", "compile", "ort", "ort", {"fix": chain[1].task}, key=f"{r:032x}c" * 2))
        gates = [
            Step(f"{name}:gate:ort.g{g}", "gate", f"g{g}", "ort", {"compile": chain[2].task}, key=f"{r:031x}{g}g" * 2)
            for g in range(4)
        ]
        deps = {"compile": chain[2].task, **{f"gate.g{g}": s.task for g, s in enumerate(gates)}}
        steps += [*chain, *gates, Step(f"{name}:publish:ort", "publish", "ort", "ort", deps, key=f"{r:032x}p" * 2)]
    return steps[:n], settings


def run_tasks(tasks: list[dict[str, Any]], jobs: int, steps: list[Any], settings: dict[str, Any]) -> float:
    from recipekit.graph.executors.events import StepReporter
    from recipekit.graph.executors.local import BuildRun, Main, RunSpec, StepLoader, doit_config
    from recipekit.graph.executors.workers import Forkserver

    cache = Path(tempfile.mkdtemp(prefix="rk-doit-overhead-"))
    results: dict[str, Any] = {}
    config = doit_config(cache, reporter=StepReporter(lambda e: None, results), default_tasks=[s.task for s in steps])
    server = Forkserver()
    t0 = time.perf_counter()
    try:
        Main(StepLoader(tasks, config, RunSpec(jobs, server, [], settings)), (BuildRun,)).run(["run", "--continue"])
    finally:
        server.stop()
    seconds = time.perf_counter() - t0
    assert len(results) == len(steps), (len(results), len(steps))
    return seconds


def executed(n: int, jobs: int) -> tuple[float, float]:
    """Wall seconds per task of `n` do-nothing tasks, and the same actions called in a loop."""
    import recipekit.graph.executors.local as local
    from recipekit.graph import doit_tasks

    steps, settings = synthetic(n)
    original = (doit_tasks.run, doit_tasks.up_to_date, local.needs_worker)
    doit_tasks.run, doit_tasks.up_to_date = noop_action, never_up_to_date
    local.needs_worker = lambda task: True  # every task goes to a worker, as a step to build does
    try:
        tasks = list(doit_tasks.step_tasks(steps, settings))
        for t in tasks:  # step_of() recognises the action by identity: keep the tasks' meta, swap the function
            if t.get("actions"):
                t["actions"] = [(noop_action, t["actions"][0][1])]
        seconds = run_tasks(tasks, jobs, steps, settings)
    finally:
        doit_tasks.run, doit_tasks.up_to_date, local.needs_worker = original
    t0 = time.perf_counter()
    for t in tasks:
        if t.get("actions"):
            noop_action(*t["actions"][0][1])
    return seconds / n, (time.perf_counter() - t0) / n


def real_noop(n: int) -> tuple[int, float, float]:
    from recipekit.doit import plan_recipes
    from recipekit.graph import doit_tasks
    from recipekit.graph.executors import events
    from recipekit.graph.runner import run_steps

    recipes = sorted((ROOT / "recipes").glob("*.yaml"))
    work = Path(tempfile.mkdtemp(prefix="rk-doit-noop-"))
    steps, settings = plan_recipes(recipes, ["export.imgsz=160"], targets=["ort"], cache=work / "c", out=work / "o")
    steps = steps[:n]
    print(f"building {len(steps)} real steps once (this takes a while) ...", file=sys.stderr)
    run_steps(steps, settings, jobs=2)
    wrapped = {name: getattr(doit_tasks, name) for name in ("up_to_date",)}
    for name, fn in wrapped.items():
        setattr(doit_tasks, name, _timed(fn))
    for name in ("execute_task", "add_success", "add_failure", "skip_uptodate"):
        setattr(events.StepReporter, name, _timed(getattr(events.StepReporter, name)))
    SPENT["ours"] = 0.0
    t0 = time.perf_counter()
    outcome = run_steps(steps, settings, jobs=1)
    total = time.perf_counter() - t0
    assert all(r["status"] in ("cached", "skipped") for r in outcome.results.values()), outcome.results
    return len(steps), (total - SPENT["ours"]) / len(steps), SPENT["ours"] / len(steps)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--real", action="store_true", help="also a no-op run of the real recipes (built cold first)")
    args = ap.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = []
    for jobs in (0, 2):
        per_task, direct = executed(args.steps, jobs)
        what = "doit runner, this process" if jobs == 0 else "recipekit's process runner, -j 2"
        rows.append((f"{args.steps} do-nothing tasks, {what}", per_task * 1000, direct * 1000))
    if args.real:
        n, doit_s, ours_s = real_noop(args.steps)
        rows.append((f"no-op run of {n} real steps (up to date), -j 1", doit_s * 1000, ours_s * 1000))
    print(f"\ndoit's overhead per task (load {load})\n")
    print(f"| {'run':<62} | doit ms/task | recipekit ms/task |")
    print(f"|{'-' * 64}|-------------:|------------------:|")
    for name, doit_ms, ours_ms in rows:
        print(f"| {name:<62} | {doit_ms:12.3f} | {ours_ms:17.3f} |")


if __name__ == "__main__":
    main()
