"""What a Dask worker runs for one step. Plain JSON in and out; the files travel through the caches.

On a cluster (`settings["on_cluster"]`) each worker has its own local cache (RECIPEKIT_CACHE on the
worker, default <tmp>/recipekit-worker-cache) and reads upstream entries built elsewhere from the
remote cache, verified. A worker killed mid-step leaves only a temporary folder in its own cache
and, at most, blobs without a meta in the remote cache: never an entry anyone reads.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

HEAVY = ("torch", "torchvision", "ultralytics", "onnx", "onnxruntime", "onnxslim", "cv2")


def step_plugins(steps: list[Any]) -> list[tuple[str, str]]:
    """The (role, name) of every plugin the steps run, in plan order, each once."""
    out: list[tuple[str, str]] = []
    for step in steps:
        if step.kind in ("export", "golden"):
            found = [("source", step.plugin)]
        elif step.kind == "fix":
            found = [("fix", f["name"]) for f in step.config.get("fixes", []) if isinstance(f, dict) and "name" in f]
        elif step.kind == "gate":
            found = [("gate", step.plugin)]
        elif step.target:
            found = [("target", step.target)]
        else:
            found = []
        out += [p for p in found if p not in out]
    return out


def _plugin(role: str, name: str) -> Any:
    from recipekit.fixes import FIXES
    from recipekit.gates import GATES
    from recipekit.sources import SOURCES
    from recipekit.targets import TARGETS

    return {"source": SOURCES, "fix": FIXES, "gate": GATES, "target": TARGETS}[role].get(name)


def plugin_imports(plugins: list[tuple[str, str]]) -> tuple[str, ...]:
    """The heavy modules those plugins import (Plugin.imports), torch first, in a stable order."""
    names = {m for role, name in plugins for m in _plugin(role, name).imports}
    return tuple(sorted(names, key=lambda m: (m != "torch", m)))


def preload_plugins(plugins: list[tuple[str, str]]) -> list[str]:
    """In a worker: each plugin's `before_import`, then every module they declare. What fails is left
    to the step that needs it, which calls `before_import` itself and reports why."""
    for role, name in plugins:
        try:
            _plugin(role, name).before_import()
        except Exception:  # noqa: BLE001 - a failing preload must not kill the worker (every step would fail)
            pass
    return preload(plugin_imports(plugins))


def preload(modules: tuple[str, ...] = HEAVY) -> list[str]:
    """Import the heavy libraries once, when the worker starts, instead of in its first step. A module
    that fails to import is left to the step that needs it (which reports why)."""
    import importlib

    done = []
    for name in modules:
        try:
            importlib.import_module(name)
            done.append(name)
        except Exception:  # noqa: BLE001 - a failing preload must not kill the worker; the step reports it
            pass
    return done


def worker_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The build settings as this worker applies them (its own cache and cores on a cluster)."""
    if not settings.get("on_cluster"):
        return settings
    cache = os.environ.get("RECIPEKIT_CACHE") or os.path.join(tempfile.gettempdir(), "recipekit-worker-cache")
    threads = os.environ.get("RECIPEKIT_THREADS")
    return {**settings, "cache": os.path.abspath(cache), "threads": int(threads) if threads else None}


def blocked(step: dict[str, Any], up: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The result of a step whose upstream failed or was blocked (it does not run), or None."""
    bad = [step["deps"][r] for r, res in up.items() if res["status"].startswith(("failed", "blocked"))]
    if bad:
        return {"status": "blocked", "task": step["task"], "reason": f"after failed {', '.join(bad)}"}
    return None


def where() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().name
    except (ImportError, ValueError):
        return None


def run_task(step: dict[str, Any], settings: dict[str, Any], up: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Run one step on this worker; returns its result (status, key, digest, notes) as JSON."""
    from recipekit.graph.execute import execute

    result = blocked(step, up)
    if result is None:
        upstream = {role: {**res, "task": step["deps"][role]} for role, res in up.items()}
        result = execute(step, worker_settings(settings), upstream)
        result["task"] = step["task"]
    name = where() if settings.get("on_cluster") else None
    if name is not None:
        result["where"] = f"on {name}"
    return result
