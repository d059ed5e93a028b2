"""What one stage sees: its step (config, key, declared input files), typed upstream outputs, the cache.

`StepContext.recipe` is the step's view (graph.view): reading a section the key does not hash
raises. Upstream outputs are `Output`s with typed results (graph.results). `cached(build)` returns
the verified cache entry of the step's key, building it under the key's lock when absent.
"""

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

from recipekit.cache.store import Entry, Store
from recipekit.graph.plan import Step
from recipekit.graph.results import Result, result_type
from recipekit.recipe.schema import Recipe

_RECIPES: dict[str, Recipe] = {}


def recipe_from(settings: dict[str, Any]) -> Recipe:
    """The whole validated recipe of a build (validated once per process). Stages get a view of it."""
    from recipekit.recipe.load import validate

    # the same text in another folder is another recipe: its relative paths (weights, samples) are its own
    text = json.dumps([settings["recipe"], settings["file"], settings["base_dir"]], sort_keys=True)
    if text not in _RECIPES:
        _RECIPES[text] = validate(settings["recipe"], settings["file"], settings["base_dir"])
    return _RECIPES[text]


@dataclass(frozen=True)
class Output:
    """What a step produced: its status, cache entry (key, folder, file digests) and typed result."""

    task: str
    kind: str
    status: str  # ran | cached | failed | unavailable | skipped | unverified | blocked
    key: str | None = None
    path: Path | None = None
    files: dict[str, str] = field(default_factory=dict)
    result: Result | None = None
    reason: str = ""
    error: str = ""
    seconds: float | None = None
    log: str = ""
    remote: str = ""  # what the remote cache did for this step (fetched, rejected, uploaded)
    note: str = ""  # what else the step line says (a publish that replaced files edited by hand)

    def file(self, name: str) -> Path:
        if self.path is None:
            raise RuntimeError(f"{self.task} has no files (status {self.status})")
        return self.path / name

    def to_json(self) -> dict[str, Any]:
        out = {
            "task": self.task,
            "kind": self.kind,
            "status": self.status,
            "key": self.key,
            "path": str(self.path) if self.path else None,
            "files": self.files,
            "result": self.result.to_json() if self.result is not None else None,
            "seconds": self.seconds,
        }
        extra = (
            ("reason", self.reason),
            ("error", self.error),
            ("log", self.log),
            ("remote", self.remote),
            ("note", self.note),
        )
        out.update({k: v for k, v in extra if v})
        if self.kind == "gate" and self.result is not None:
            out["gate"] = out["result"]
        return out

    @classmethod
    def from_json(cls, role: str, data: dict[str, Any]) -> Output:
        kind = data.get("kind") or role.split(".", 1)[0]
        model = result_type(kind)
        raw = data.get("result")
        return cls(
            task=data.get("task", ""),
            kind=kind,
            status=data["status"],
            key=data.get("key"),
            path=Path(data["path"]) if data.get("path") else None,
            files=dict(data.get("files") or {}),
            result=model.model_validate(raw) if model is not None and raw is not None else None,
            reason=data.get("reason", ""),
            error=data.get("error", ""),
            seconds=data.get("seconds"),
        )

    @classmethod
    def from_entry(cls, step: Step, entry: Entry, status: str, reason: str = "") -> Output:
        model = result_type(step.kind)
        raw = entry.meta.get("result")
        files = {n: d for n, d in entry.digests.items()}
        result = model.model_validate(raw) if model is not None and raw is not None else None
        return cls(
            step.task,
            step.kind,
            status,
            entry.key,
            entry.path,
            files,
            result,
            reason,
            seconds=entry.meta.get("seconds"),
        )


@dataclass(frozen=True)
class InputFile:
    path: Path
    digest: str


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
class StepContext:
    """Handed to a stage: exactly what its key hashed, and the store to keep its output in."""

    step: Step
    settings: dict[str, Any]  # the build's settings (cli.build.build_settings)
    upstream: dict[str, Output] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.step.task

    @property
    def key(self) -> str:
        return self.step.key

    @property
    def config(self) -> dict[str, Any]:
        return self.step.config

    @cached_property
    def recipe(self) -> Recipe:
        from recipekit.graph.view import project

        return project(recipe_from(self.settings), self.step.reads, self.step.task)

    @cached_property
    def store(self) -> Store:
        return Store(self.settings["cache"])

    @cached_property
    def files(self) -> dict[str, InputFile]:
        digests = self.step.inputs.get("files", {})
        return {name: InputFile(Path(path), digests[name]) for name, path in self.step.files.items()}

    def up(self, role: str) -> Output:
        if role not in self.upstream:
            raise RuntimeError(f"internal error: {self.task} reads upstream {role!r}, which it does not declare")
        return self.upstream[role]

    def state_dir(self, name: str) -> Path:
        """A folder in the cache for a plugin's own state (e.g. a TensorRT timing cache)."""
        path = self.store.root / "state" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def remote(self) -> Any:
        from recipekit.cache.remote import from_settings

        return from_settings(self.settings)

    @cached_property
    def notes(self) -> list[str]:
        """What the remote cache did for this step, for the step line."""
        return []

    def materialize(self) -> None:
        """Point every upstream output at an entry in this machine's cache, fetching it from the
        remote cache (verified) when it was built elsewhere (a cluster worker, another CI job)."""
        from dataclasses import replace

        from recipekit.core.errors import StepFailed

        for role, up in list(self.upstream.items()):
            if not up.key or up.status not in ("ran", "cached") or up.path is None and not up.files:
                continue
            entry = self.store.get(up.key) or self._fetch(up.key)
            if entry is None:
                raise StepFailed(self.task, f"upstream {role} entry {up.key[:12]} is in no cache")
            if entry.digests != up.files:
                raise StepFailed(self.task, f"upstream {role} entry {up.key[:12]} has other files than built")
            self.upstream[role] = replace(up, path=entry.path)

    def cached(self, build: Callable[[Path], Result]) -> Output:
        """The verified entry for this step's key: local, else fetched from the remote cache
        (verified), else built under the key's lock (and uploaded). --force rebuilds."""
        from dataclasses import replace

        force = bool(self.settings.get("force"))
        entry = None if force else self.store.get(self.key)
        status, why = "cached", ""
        if entry is not None and self.settings.get("on_cluster"):
            self._push(entry)  # a worker's own cache is not shared: the remote one must hold what it reports
        if entry is None:
            with self.store.lock(self.key):
                entry = None if force else self.store.get(self.key) or self._fetch(self.key)
                if entry is None:
                    why = self.store.problems.get(self.key, "")
                    entry, status = self._build(build), "ran"
                    self._push(entry)
        out = Output.from_entry(self.step, entry, status, f"corrupt cache entry rebuilt: {why}" if why else "")
        return replace(out, remote="; ".join(self.notes))

    def _fetch(self, key: str) -> Entry | None:
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

    def _push(self, entry: Entry) -> None:
        if self.remote is None or self.remote.read_only:
            return
        try:
            if self.remote.push(entry):
                self.notes.append(f"uploaded to {self.remote.shown}")
        except Exception as exc:  # noqa: BLE001 - the build stands; the upload is reported
            self.notes.append(f"upload to {self.remote.shown} failed ({type(exc).__name__}: {exc})")

    def check_inputs(self) -> None:
        """Every declared input file is here with the bytes its digest (in the key) names, or StepFailed.

        The key was computed where the build was planned; a worker that would read another version of
        a file at that path (a stale checkout, a file edited mid-build) must not file its output under it."""
        from recipekit.core.errors import StepFailed

        for name, f in self.files.items():
            if not f.path.is_file():
                raise StepFailed(
                    self.task,
                    f"input {name}: {f.path} is not on this machine; steps read the recipe's files at the paths "
                    "the build was planned with (on a cluster: the same checkout or a shared mount on every worker)",
                )
            got = self.store.memo.digest(f.path)
            if got != f.digest:
                raise StepFailed(
                    self.task,
                    f"input {name}: {f.path} has other bytes than when the build was planned (sha256 {got[:12]}, "
                    f"keyed {f.digest[:12]}); build again",
                )

    def _build(self, build: Callable[[Path], Result]) -> Entry:
        self.check_inputs()
        t0 = time.perf_counter()
        with self.store.writer(self.key) as work, captured() as log:
            try:
                result = build(work)
            except BaseException as exc:
                exc.step_log = log()  # type: ignore[attr-defined]
                raise
            meta = {
                "task": self.task,
                "kind": self.step.kind,
                "plugin": self.step.plugin,
                "config": self.config,
                "inputs": self.step.inputs,
                "seconds": round(time.perf_counter() - t0, 3),
                "log": log(),
                "result": result.to_json(),
            }
        return self.store.commit(self.key, work, meta, replace=bool(self.settings.get("force")))
