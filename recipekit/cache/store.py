"""A content-addressed store of step outputs: cache/objects/<key[:2]>/<key>/ + meta.json.

An entry is written into a temporary folder and renamed into place only once complete, so a build
killed at any moment never leaves a half entry; a lock per key stops two builds doing the same step
at once (the second waits, then finds the entry). Failed steps leave nothing behind.

Reads are verified: an entry is used only if every file matches the digest its meta.json records
(a stat memo spares re-hashing unchanged files). A mismatching entry is reported, moved aside to
cache/corrupt/ and treated as absent, so it is rebuilt. A running build registers the keys it
uses under cache/holds/ (a lock file held for the build's life): `gc` never removes those.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from recipekit.cache.digests import DigestMemo, file_sha256, hashed
from recipekit.cache.fs import atomic_write_text, share

META = "meta.json"
KEY_LEN = 64


@dataclass(frozen=True)
class Entry:
    """A finished cache entry: its folder and its meta.json."""

    key: str
    path: Path
    meta: dict[str, Any]

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def digests(self) -> dict[str, str]:
        return self.meta["files"]

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def last_used(self) -> float:
        return self.path.stat().st_mtime


class Store:
    """The cache rooted at `root` (default ./cache; --cache DIR or RECIPEKIT_CACHE).

    `readonly` (`plan`): nothing is written, moved or remembered; a corrupt entry reads as absent.
    """

    def __init__(self, root: str | Path, readonly: bool = False) -> None:
        self.root = Path(root).resolve()
        self.readonly = readonly
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.locks = self.root / "locks"
        self.holds = self.root / "holds"
        self.corrupt = self.root / "corrupt"
        self.problems: dict[str, str] = {}

    @cached_property
    def memo(self) -> DigestMemo:
        return DigestMemo(self.root / "digests.json", readonly=self.readonly)

    def path(self, key: str) -> Path:
        return self.objects / key[:2] / key

    def read(self, key: str) -> Entry | None:
        """The entry for `key` as recorded, without checking its files (None if absent)."""
        meta = self.path(key) / META
        try:
            return Entry(key, meta.parent, json.loads(meta.read_text()))
        except (OSError, ValueError):
            return None

    def get(self, key: str) -> Entry | None:
        """The entry for `key` if present and intact; a corrupt one is moved aside and reads as None."""
        entry = self.read(key)
        if entry is None:
            return None
        problem = self.check(entry, memo=True)
        if problem:
            self._corrupt(entry, problem)
            return None
        if not self.readonly:
            self._touch(entry.path)
        return entry

    def check(self, entry: Entry, memo: bool = True) -> str | None:
        """Why `entry` cannot be trusted (a missing, extra or changed file), or None."""
        recorded = entry.meta.get("files")
        if not isinstance(recorded, dict):
            return "meta.json records no file digests"
        present = {p.relative_to(entry.path).as_posix() for p in entry.path.rglob("*") if p.is_file()} - {META}
        if present != set(recorded):
            diff = sorted(set(recorded) ^ present)
            return f"files differ from meta.json: {', '.join(diff[:3])}"
        for name, digest in recorded.items():
            path = entry.path / name
            actual = self.memo.digest(path) if memo else file_sha256(path)
            if actual != digest:
                return f"{name}: sha256 {actual[:12]}... but meta.json records {digest[:12]}..."
        return None

    def _corrupt(self, entry: Entry, problem: str) -> None:
        task = entry.meta.get("task", "?")
        self.problems[entry.key] = problem
        if self.readonly:
            return
        print(
            f"recipekit: cache entry {entry.key} ({task}) is corrupt ({problem}): moved to {self.corrupt}, rebuilding",
            file=sys.stderr,
        )
        self.remove(entry.key, aside=True)

    def remove(self, key: str, aside: bool = False) -> None:
        """Take an entry out of objects/ (atomically), into corrupt/ (`aside`) or deleted."""
        src = self.path(key)
        dest_root = self.corrupt if aside else self.tmp
        dest_root.mkdir(parents=True, exist_ok=True)
        dest = dest_root / f"{key}.{time.strftime('%Y%m%dT%H%M%S')}.{uuid.uuid4().hex[:6]}"
        try:
            os.replace(src, dest)
        except OSError:
            return
        for p in dest.rglob("*"):
            self.memo.forget(p)
        if not aside:
            shutil.rmtree(dest, ignore_errors=True)

    @staticmethod
    def _touch(path: Path) -> None:
        try:
            os.utime(path)
        except OSError:
            pass

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        from filelock import FileLock

        self.locks.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.locks / f"{key}.lock")):
            yield

    def is_locked(self, key: str) -> bool:
        """True while some process holds `key`'s lock (building it)."""
        from filelock import FileLock, Timeout

        path = self.locks / f"{key}.lock"
        if not path.exists():
            return False
        try:
            with FileLock(str(path), timeout=0):
                return False
        except Timeout:
            return True

    @contextmanager
    def writer(self, key: str) -> Iterator[Path]:
        """A temporary folder for the step's files; renamed to the entry only if the block succeeds."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=self.tmp))
        try:
            yield work
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise

    def commit(self, key: str, work: Path, meta: dict[str, Any], replace: bool = False) -> Entry:
        """Record digests of every file in `work`, write meta.json last, rename into place.

        `replace` (a --force rebuild) swaps out an existing entry; otherwise an entry another build
        finished first wins (same key, same content) and this copy is dropped.
        """
        share(work)  # first: a change of mode changes a file's ctime, part of what the digest memo knows it by
        hashes = {p.relative_to(work).as_posix(): hashed(p) for p in sorted(work.rglob("*")) if p.is_file()}
        files = {name: digest for name, (digest, _) in hashes.items()}
        meta = {**meta, "key": key, "files": files, "created": time.time()}
        (work / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists() and replace:
            self.remove(key)
            os.replace(work, final)
        elif final.exists():
            shutil.rmtree(work, ignore_errors=True)
            hashes = {}  # another build's entry (same key, same content): its files are not these
        else:
            os.replace(work, final)
        # renaming the folder keeps its files' identity: the steps that read them next do not hash them again
        self.memo.remember([(final / name, ident, digest) for name, (digest, ident) in hashes.items() if ident])
        entry = self.read(key)
        assert entry is not None  # noqa: S101 - just renamed into place
        return entry

    def clean_tmp(self, max_age_s: float = 3600.0) -> int:
        """Remove temporary folders of killed builds: a step's folder once its key is not locked,
        anything else once older than `max_age_s`."""
        removed = 0
        for p in list(self.tmp.iterdir()) if self.tmp.is_dir() else []:
            key = p.name.split(".", 1)[0]
            if len(key) == KEY_LEN:
                stale = not self.is_locked(key)
            else:
                stale = time.time() - p.stat().st_mtime > max_age_s
            if stale:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                removed += 1
        return removed

    @contextmanager
    def hold(self, keys: list[str]) -> Iterator[None]:
        """Register `keys` as in use by this build (for `gc`) while the block runs."""
        from filelock import FileLock

        self.holds.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
        lock = FileLock(str(self.holds / f"{name}.lock"))
        with lock:
            atomic_write_text(self.holds / f"{name}.json", json.dumps(sorted(set(keys))))
            try:
                yield
            finally:
                (self.holds / f"{name}.json").unlink(missing_ok=True)
        (self.holds / f"{name}.lock").unlink(missing_ok=True)

    def held(self) -> set[str]:
        """Keys some running build holds; registrations of dead builds are removed."""
        from filelock import FileLock, Timeout

        out: set[str] = set()
        for doc in list(self.holds.glob("*.json")) if self.holds.is_dir() else []:
            lock = doc.with_suffix(".lock")
            try:
                with FileLock(str(lock), timeout=0):
                    doc.unlink(missing_ok=True)
                lock.unlink(missing_ok=True)
            except Timeout:
                try:
                    out.update(json.loads(doc.read_text()))
                except (OSError, ValueError):
                    pass
        return out

    def entries(self) -> Iterator[Entry]:
        for meta in sorted(self.objects.glob(f"*/*/{META}")) if self.objects.is_dir() else []:
            entry = self.read(meta.parent.name)
            if entry:
                yield entry
