"""A content-addressed store of step outputs: cache/objects/<key[:2]>/<key>/ + meta.json.

An entry is written into a temporary folder and renamed into place only once complete, so a build
killed at any moment never leaves a half entry; a lock per key stops two builds doing the same step
at once (the second waits, then finds the entry). Failed steps leave nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipekit.cache.digests import file_sha256

META = "meta.json"


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


class Store:
    """The cache rooted at `root` (default ./cache; --cache DIR or RECIPEKIT_CACHE)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.locks = self.root / "locks"

    def path(self, key: str) -> Path:
        return self.objects / key[:2] / key

    def get(self, key: str) -> Entry | None:
        """The entry for `key`, or None. Only complete entries exist under objects/."""
        meta = self.path(key) / META
        try:
            return Entry(key, meta.parent, json.loads(meta.read_text()))
        except (OSError, ValueError):
            return None

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        from filelock import FileLock

        self.locks.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.locks / f"{key}.lock")):
            yield

    @contextmanager
    def writer(self, key: str) -> Iterator[Path]:
        """A temporary folder for the step's files; renamed to the entry only if the block succeeds."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{key[:16]}.", dir=self.tmp))
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
        files = {p.relative_to(work).as_posix(): file_sha256(p) for p in sorted(work.rglob("*")) if p.is_file()}
        meta = {**meta, "key": key, "files": files, "created": time.time()}
        (work / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists() and replace:
            old = Path(tempfile.mkdtemp(prefix="old.", dir=self.tmp))
            os.replace(final, old / "entry")
            os.replace(work, final)
            shutil.rmtree(old, ignore_errors=True)
        elif final.exists():
            shutil.rmtree(work, ignore_errors=True)
        else:
            os.replace(work, final)
        entry = self.get(key)
        assert entry is not None  # noqa: S101 - just renamed into place
        return entry

    def clean_tmp(self, max_age_s: float = 3600.0) -> int:
        """Remove temporary folders left by killed builds (older than max_age_s)."""
        removed = 0
        for p in self.tmp.glob("*") if self.tmp.is_dir() else []:
            if time.time() - p.stat().st_mtime > max_age_s:
                shutil.rmtree(p, ignore_errors=True)
                removed += 1
        return removed

    def entries(self) -> Iterator[Entry]:
        for meta in sorted(self.objects.glob(f"*/*/{META}")) if self.objects.is_dir() else []:
            entry = self.get(meta.parent.name)
            if entry:
                yield entry
