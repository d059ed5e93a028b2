"""File digests. Files are hashed once and remembered by (path, size, mtime_ns, ctime_ns, inode).

The memo is loaded once per process and written back (atomically) only when it learnt something,
so a no-op build neither re-reads large files nor rewrites the memo. A read-only memo (`plan`)
never writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()


def canonical(obj: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, tuples as lists."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def digest_of(obj: Any) -> str:
    """The sha256 of `obj`'s canonical JSON: what every cache key is."""
    return hashlib.sha256(canonical(obj).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _ident(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _identity(path: str | Path) -> list[int] | None:
    try:
        return _ident(os.stat(path))
    except OSError:  # gone (a gc, a clean) since
        return None


def hashed(path: Path) -> tuple[str, list[int] | None]:
    """The file's sha256 and its identity (size, mtime, ctime, inode) while hashed; None for the
    identity when the file changed meanwhile."""
    before = _ident(os.stat(path))
    digest = file_sha256(path)
    return digest, before if _ident(os.stat(path)) == before else None


class DigestMemo:
    """sha256 of files, remembered in a JSON file keyed by the file's path and stat."""

    def __init__(self, memo_file: Path, readonly: bool = False) -> None:
        self.memo_file = memo_file
        self.readonly = readonly
        self._memo: dict[str, list] | None = None
        self._dirty = False

    def _load(self) -> dict[str, list]:
        if self._memo is None:
            try:
                self._memo = json.loads(self.memo_file.read_text())
            except (OSError, ValueError):
                self._memo = {}
        return self._memo

    def digest(self, path: Path) -> str:
        path = path.resolve()
        ident = _ident(os.stat(path))
        with _LOCK:
            known = self._load().get(str(path))
            if known and known[:4] == ident:
                return known[4]
        digest, unchanged = hashed(path)
        if unchanged:  # the same file before and after hashing: safe to remember
            self.remember([(path, unchanged, digest)])
        return digest

    def remember(self, known: list[tuple[Path, list[int], str]]) -> None:
        """Digests just computed elsewhere: (path, identity when hashed, digest), each remembered if
        the file at `path` still has that identity (a cache entry hashed before it was renamed into
        place: the next step reading it does not hash it again)."""
        fresh = [(str(path.resolve()), ident, digest) for path, ident, digest in known]
        fresh = [(path, ident, digest) for path, ident, digest in fresh if _identity(path) == ident]
        if not fresh:
            return
        with _LOCK:
            memo = self._load()
            for path, ident, digest in fresh:
                memo[path] = [*ident, digest]
            self._dirty = True
            self._save()

    def forget(self, path: Path) -> None:
        with _LOCK:
            if self._load().pop(str(path.resolve()), None) is not None:
                self._dirty = True
                self._save()

    def flush(self) -> None:
        """Write what was learnt while read-only (once the caller knows the input was good)."""
        self.readonly = False
        with _LOCK:
            self._save()

    def _save(self) -> None:
        if self.readonly or not self._dirty:
            return
        self._dirty = False
        from recipekit.cache.fs import atomic_write_text

        fresh = self._merged()
        atomic_write_text(self.memo_file, json.dumps(fresh, sort_keys=True))

    def _merged(self) -> dict[str, list]:
        """What other processes remembered meanwhile, plus what this one learnt."""
        try:
            other = json.loads(self.memo_file.read_text())
        except (OSError, ValueError):
            other = {}
        other.update(self._memo or {})
        self._memo = other
        return other
