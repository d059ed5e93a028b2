"""What one step execution sees: its step, the build settings, its upstream results, the cache."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from recipekit.cache.digests import DigestMemo
from recipekit.cache.store import Store
from recipekit.graph.keys import digest_of, step_key
from recipekit.recipe.schema import Recipe

_RECIPES: dict[str, Recipe] = {}


def recipe_from(env: dict[str, Any]) -> Recipe:
    """The validated recipe a step works on (validated once per process)."""
    from recipekit.recipe.load import validate

    text = json.dumps(env["recipe"], sort_keys=True)
    if text not in _RECIPES:
        _RECIPES[text] = validate(env["recipe"], env["file"], env["base_dir"])
    return _RECIPES[text]


@contextmanager
def captured() -> Iterator[Callable[[], str]]:
    """Send fd 1 and 2 (Python, C++ and library loggers alike) to a file for the step's log."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile("w+b") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield lambda: _tail(log)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _tail(log: Any, limit: int = 20000) -> str:
    sys.stdout.flush()
    sys.stderr.flush()
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-limit:]


@dataclass
class Run:
    step: dict[str, Any]
    env: dict[str, Any]
    up: dict[str, dict[str, Any]] = field(default_factory=dict)

    @cached_property
    def recipe(self) -> Recipe:
        return recipe_from(self.env)

    @cached_property
    def store(self) -> Store:
        return Store(self.env["cache"])

    @cached_property
    def memo(self) -> DigestMemo:
        return DigestMemo(self.store.root / "digests.json")

    @property
    def base_dir(self) -> Path:
        return Path(self.env["base_dir"])

    def upstream_dir(self, role: str) -> Path:
        return Path(self.up[role]["path"])

    def cached(
        self, version: str, inputs: dict[str, Any], tools: dict[str, Any], build: Callable[[Path], dict[str, Any]]
    ) -> dict[str, Any]:
        """Return the cache entry for this step's key, building it (under a per-key lock) if absent."""
        step = self.step
        key = step_key(step["kind"], step["plugin"], version, step["config"], inputs, tools)
        entry = None if self.env.get("force") else self.store.get(key)
        if entry is None and self.env.get("dry"):
            return {"status": "run", "key": key, "why": "forced" if self.env.get("force") else "not in cache"}
        if entry is None:
            with self.store.lock(key):
                entry = None if self.env.get("force") else self.store.get(key)
                if entry is None:
                    entry = self._build(key, inputs, tools, build)
                    return self._result(entry, "ran")
        return self._result(entry, "cached")

    def _build(self, key: str, inputs: dict[str, Any], tools: dict[str, Any], build: Callable[[Path], dict[str, Any]]):
        t0 = time.perf_counter()
        with self.store.writer(key) as work, captured() as log:
            try:
                result = build(work)
            except BaseException as exc:
                exc.step_log = log()  # type: ignore[attr-defined]
                raise
            meta = {
                "task": self.step["task"],
                "kind": self.step["kind"],
                "plugin": self.step["plugin"],
                "config": self.step["config"],
                "inputs": inputs,
                "tools": tools,
                "seconds": round(time.perf_counter() - t0, 3),
                "log": log(),
                "result": result,
            }
        return self.store.commit(key, work, meta, replace=bool(self.env.get("force")))

    @staticmethod
    def _result(entry: Any, status: str) -> dict[str, Any]:
        return {
            "status": status,
            "key": entry.key,
            "path": str(entry.path),
            "digest": digest_of(entry.digests),
            "result": entry.meta.get("result", {}),
            "seconds": entry.meta.get("seconds"),
        }
