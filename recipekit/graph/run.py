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

    def materialize(self) -> None:
        """Point every upstream result at an entry in this machine's cache, fetching it from the
        remote cache (verified) when it was built elsewhere (a cluster worker, another CI job)."""
        from recipekit.core.errors import StepFailed

        for role, up in self.up.items():
            if not up.get("key") or up.get("status") not in ("ran", "cached"):
                continue
            entry = self.store.get(up["key"]) or self._fetch(up["key"])
            if entry is None:
                raise StepFailed(self.step["task"], f"upstream {role} entry {up['key'][:12]} is in no cache")
            if digest_of(entry.digests) != up["digest"]:
                raise StepFailed(
                    self.step["task"], f"upstream {role} entry {up['key'][:12]} has other files than built"
                )
            up["path"] = str(entry.path)

    @cached_property
    def remote(self) -> Any:
        from recipekit.cache.remote import from_env

        return from_env(self.env)

    def cached(
        self, version: str, inputs: dict[str, Any], tools: dict[str, Any], build: Callable[[Path], dict[str, Any]]
    ) -> dict[str, Any]:
        """Return the cache entry for this step's key: local, else fetched from the remote cache
        (verified), else built under a per-key lock (and uploaded to the remote cache)."""
        step, force = self.step, bool(self.env.get("force"))
        key = step_key(step["kind"], step["plugin"], version, step["config"], inputs, tools)
        entry = None if force else self.store.get(key)
        if entry is None and self.env.get("dry"):
            return self._dry(key, force)
        if entry is None:
            with self.store.lock(key):
                entry = None if force else self.store.get(key) or self._fetch(key)
                if entry is None:
                    entry = self._build(key, inputs, tools, build)
                    self._push(entry)
                    return self._result(entry, "ran", self.notes)
        return self._result(entry, "cached", self.notes)

    @cached_property
    def notes(self) -> list[str]:
        """What the remote cache did for this step (fetched, rejected, uploaded), for the step line."""
        return []

    def _fetch(self, key: str) -> Any:
        from recipekit.cache.remote import RemoteRejected

        if self.remote is None:
            return None
        try:
            entry = self.remote.fetch(key, self.store)
        except RemoteRejected as exc:
            self.notes.append(f"remote entry {key[:12]} rejected ({exc})")
            try:
                self.remote.forget(key, exc)
            except Exception:  # noqa: BLE001 - a rebuild follows either way
                pass
            return None
        except Exception as exc:  # noqa: BLE001 - an unreachable remote is a miss, reported
            self.notes.append(f"remote cache unreachable ({type(exc).__name__}: {exc}), built here")
            return None
        if entry is not None:
            self.notes.append(f"from remote {self.remote.shown}")
        return entry

    def _push(self, entry: Any) -> None:
        if self.remote is None or self.remote.read_only:
            return
        try:
            if self.remote.push(entry):
                self.notes.append(f"uploaded to {self.remote.shown}")
        except Exception as exc:  # noqa: BLE001 - the build stands; the upload is reported
            self.notes.append(f"upload to {self.remote.shown} failed ({type(exc).__name__}: {exc})")

    def _dry(self, key: str, force: bool) -> dict[str, Any]:
        """`recipekit plan`: a remote entry counts as cached (its meta is read, nothing downloaded)."""
        meta = None
        if self.remote is not None and not force:
            try:
                meta = self.remote.read_meta(key)
            except Exception:  # noqa: BLE001 - plan shows what a build would do: rebuild
                meta = None
        if meta is not None:
            return {
                "status": "cached",
                "key": key,
                "why": f"in remote {self.remote.shown}",
                "path": None,
                "digest": digest_of(meta["files"]),
                "result": meta.get("result", {}),
            }
        return {"status": "run", "key": key, "why": "forced" if force else "not in cache"}

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
    def _result(entry: Any, status: str, notes: list[str] | None = None) -> dict[str, Any]:
        out = {
            "status": status,
            "key": entry.key,
            "path": str(entry.path),
            "digest": digest_of(entry.digests),
            "result": entry.meta.get("result", {}),
            "seconds": entry.meta.get("seconds"),
        }
        if notes:
            out["remote"] = "; ".join(notes)
        return out
