"""Run one step wherever an executor put it (this process, a -j worker, a Dask worker): its upstream
outputs from the caches, its StepContext, its stage; errors turned into a result (never a traceback).

A step runs only after the steps it reads (doit's task_dep, Dask's futures); each reads their
outputs from the caches by the keys its own key hashed, so nothing travels between processes but
JSON. On a cluster (`settings["on_cluster"]`) each worker has its own local cache (RECIPEKIT_CACHE on
the worker, default <tmp>/recipekit-worker-cache) and reads entries built elsewhere from the remote
cache, verified.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recipekit.graph.context import Output
    from recipekit.graph.plan import Step


def share_cores(threads: int | None) -> None:
    """With -j N, each worker process gets its share of the cores (torch, OpenMP, ONNX Runtime):
    N processes each using every core would only fight over them."""
    if not threads:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RECIPEKIT_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def worker_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The build settings as this process applies them (a cluster worker: its own cache and cores)."""
    if not settings.get("on_cluster"):
        return settings
    cache = os.environ.get("RECIPEKIT_CACHE") or os.path.join(tempfile.gettempdir(), "recipekit-worker-cache")
    threads = os.environ.get("RECIPEKIT_THREADS")
    return {**settings, "cache": os.path.abspath(cache), "threads": int(threads) if threads else None}


def _where(settings: dict[str, Any]) -> str | None:
    if not settings.get("on_cluster"):
        return None
    try:
        from distributed import get_worker

        return get_worker().name
    except (ImportError, ValueError):
        return None


def _blocked(step: Step, up: dict[str, Output]) -> dict[str, Any] | None:
    """The result of a step whose upstream failed or was blocked (it does not run), or None."""
    bad = [step.deps[role] for role, out in up.items() if out.status.startswith(("failed", "blocked"))]
    return {"status": "blocked", "task": step.task, "reason": f"after failed {', '.join(bad)}"} if bad else None


def run_step(
    step_json: dict[str, Any], settings: dict[str, Any], skipped: dict[str, Any], results: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run one step; its result as JSON (status, key, files, result, error, where).

    `skipped`: upstream gates the plan does not run (task -> (verdict, reason); nothing is cached for them).
    `results`: upstream results by task, when the executor hands them over (Dask); else the caches."""
    from recipekit.core.errors import RecipeKitError
    from recipekit.graph.plan import Step
    from recipekit.graph.settled import upstream, write_note

    step, settings = Step(**step_json), worker_settings(settings)
    t0 = time.perf_counter()
    try:
        up = upstream(step, settings, skipped, results)
    except RecipeKitError as exc:
        result: dict[str, Any] | None = {"status": "failed", "task": step.task, "error": str(exc), "kind": step.kind}
    else:
        result = _blocked(step, up)
    if result is None:
        result = {**execute(step, settings, up), "task": step.task}
        if result["status"] == "unavailable" and result.get("key"):
            write_note(settings, result)  # no entry: the steps after it read this
    result.setdefault("seconds_wall", round(time.perf_counter() - t0, 3))
    where = _where(settings)
    if where is not None:
        result["where"] = f"on {where}"
    return result


def execute(step: Step, settings: dict[str, Any], upstream: dict[str, Output]) -> dict[str, Any]:
    """Run one step; errors become a result with status 'failed' and a message (no traceback)."""
    from recipekit.core.errors import RecipeKitError
    from recipekit.graph.context import StepContext
    from recipekit.graph.stages import stage

    t0 = time.perf_counter()
    share_cores(settings.get("threads"))
    try:
        ctx = StepContext(step, settings, dict(upstream))
        ctx.materialize()
        result = stage(step.kind).run(ctx).to_json()
    except RecipeKitError as exc:  # exit_code 2: bad input only a build could find (a factory's undeclared read)
        result = {
            "status": "failed",
            "error": str(exc),
            "log": getattr(exc, "step_log", ""),
            "exit_code": exc.exit_code,
        }
    except Exception as exc:  # noqa: BLE001 - a step's failure is reported, not raised
        tb = traceback.format_exc(limit=8)
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "log": getattr(exc, "step_log", "") + tb}
    result.setdefault("kind", step.kind)
    result["seconds_wall"] = round(time.perf_counter() - t0, 3)
    json.dumps(result)  # results travel between processes (pool, Dask): they must be JSON
    return result
