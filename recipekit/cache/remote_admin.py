"""`recipekit cache ACTION --remote-cache URL`: ls, du, verify [--repair] and gc of a remote cache.

A remote entry's age is the time since it was uploaded (a remote cache records no reads). gc never
races an upload: a blob is removed only when no remaining entry names it and it is older than the
grace period (an upload in progress writes its blobs before its meta), and so are stray parts.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from recipekit.cache.maintain import human, span
from recipekit.cache.remote import RemoteCache, RemoteRejected

GRACE_S = 3600.0
Say = Callable[[str], None]


def _age_s(info: dict[str, Any], now: float) -> float:
    """Seconds since an fsspec object was written (S3 LastModified, a file's mtime, ...)."""
    for name in ("LastModified", "mtime", "last_modified", "updated", "created"):
        value = info.get(name)
        if isinstance(value, dt.datetime):
            return now - value.timestamp()
        if isinstance(value, int | float):
            return now - float(value)
        if isinstance(value, str):
            try:
                return now - dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return float("inf")


def entries(remote: RemoteCache) -> list[dict[str, Any]]:
    """Every remote entry's meta, oldest first (a malformed one as {"key", "error"})."""
    out = []
    for key in remote.keys():
        try:
            meta = remote.read_meta(key)
        except RemoteRejected as exc:
            meta = {"key": key, "error": str(exc)}
        if meta is not None:
            out.append(meta)
    return sorted(out, key=lambda m: float(m.get("created", 0)))


def _size(meta: dict[str, Any], sizes: dict[str, int]) -> int:
    return sum(sizes.get(sha, 0) for sha in set(meta.get("files", {}).values()))


def ls(remote: RemoteCache, say: Say = print) -> int:
    sizes = {sha: int(info.get("size", 0)) for sha, info in remote.blobs().items()}
    now = time.time()
    for meta in entries(remote):
        if "error" in meta:
            say(f"{'?':<28} {'MALFORMED: ' + meta['error']:<36} {'':>8} {'':>5}  {meta['key'][:16]}")
            continue
        recipe, _, step = str(meta.get("task", "?:?")).partition(":")
        age = span(now - float(meta.get("created", now)))
        say(f"{recipe:<28} {step:<36} {human(_size(meta, sizes)):>8} {age:>5}  {meta['key'][:16]}")
    return 0


def du(remote: RemoteCache, say: Say = print) -> int:
    blobs = remote.blobs()
    sizes = {sha: int(info.get("size", 0)) for sha, info in blobs.items()}
    per: dict[str, list[int]] = {}
    metas = entries(remote)
    for meta in metas:
        per.setdefault(str(meta.get("kind", "?")), []).append(_size(meta, sizes))
    for kind, counted in sorted(per.items()):
        say(f"{kind:<10} {len(counted):>5} entries {human(sum(counted)):>9}")
    say(f"{'total':<10} {len(metas):>5} entries {human(sum(sizes.values())):>9}  {remote.shown} ({len(blobs)} blobs)")
    return 0


def verify(remote: RemoteCache, repair: bool = False, say: Say = print) -> int:
    """Download every entry's blobs and check each digest; exit 1 if any entry is bad."""
    bad = 0
    keys = list(remote.keys())
    for key in keys:
        why = remote.verify(key)
        if why:
            bad += 1
            if repair:
                remote.delete(key)
            say(f"CORRUPT {key} remote: {why}" + ("  (removed)" if repair else ""))
    tail = "" if not bad or repair else " (--repair removes them)"
    say(f"verified {len(keys)} entries in {remote.shown}: {bad} corrupt{tail}")
    return 1 if bad else 0


def gc(remote: RemoteCache, older_than: float | None, max_size: int | None, say: Say = print) -> int:
    """Remove malformed entries, entries uploaded longer than `older_than` seconds ago, then the
    oldest until the referenced blobs fit in `max_size` bytes; then blobs no entry names."""
    now, blobs = time.time(), remote.blobs()
    sizes = {sha: int(info.get("size", 0)) for sha, info in blobs.items()}
    keep = []
    for meta in entries(remote):
        old = older_than is not None and now - float(meta.get("created", 0)) > older_than
        if "error" in meta or old:
            remote.delete(meta["key"])
            say(f"removed {meta['key'][:16]} {meta.get('task', 'malformed')}")
        else:
            keep.append(meta)
    while max_size is not None and keep and sum(sizes.get(s, 0) for s in _named(keep)) > max_size:
        meta = keep.pop(0)
        remote.delete(meta["key"])
        say(f"removed {meta['key'][:16]} {meta.get('task', '?')} (size)")
    named, freed = _named(keep), 0
    for name, info in blobs.items():
        if (name.endswith(".part") or name not in named) and _age_s(info, now) > GRACE_S:
            remote.fs.rm_file(info["name"])
            freed += sizes.get(name, 0)
    say(f"gc {remote.shown}: {len(keep)} entries kept, {human(freed)} of unreferenced blobs removed")
    return 0


def _named(metas: list[dict[str, Any]]) -> set[str]:
    return {sha for m in metas for sha in m.get("files", {}).values()}
