"""Run one step: its StepContext, its stage, errors turned into a result (never a traceback)."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any


def share_cores(threads: int | None) -> None:
    """With -j N, each worker process gets its share of the cores (torch, OpenMP, ONNX Runtime):
    N processes each using every core would only fight over them."""
    if not threads:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RECIPEKIT_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def execute(step: dict[str, Any], settings: dict[str, Any], up: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Run one step; errors become a result with status 'failed' and a message (no traceback)."""
    from recipekit.core.errors import RecipeKitError
    from recipekit.graph.context import Output, StepContext
    from recipekit.graph.plan import Step
    from recipekit.graph.stages import stage

    t0 = time.perf_counter()
    share_cores(settings.get("threads"))
    try:
        s = Step(**step)
        ctx = StepContext(s, settings, {role: Output.from_json(role, res) for role, res in up.items()})
        ctx.materialize()
        result = stage(s.kind).run(ctx).to_json()
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
    result.setdefault("kind", step["kind"])
    result["seconds_wall"] = round(time.perf_counter() - t0, 3)
    json.dumps(result)  # results travel between processes (pool, Dask): they must be JSON
    return result
