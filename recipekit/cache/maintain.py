"""Looking after a cache: list entries, their sizes, re-verify every byte, collect garbage.

`gc` never removes an entry a running build holds (its keys are registered under cache/holds/
for the build's life) nor one being built (its key lock is held).
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from recipekit.cache.store import Entry, Store

UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
SPANS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str) -> int:
    """'20G', '500M', '1.5T', '4096' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtb]?)i?b?\s*", text.lower())
    if not m:
        raise ValueError(f"expected a size like 20G, 500M or 4096, got {text!r}")
    return int(float(m.group(1)) * UNITS[m.group(2)])


def parse_age(text: str) -> float:
    """'30d', '12h', '90m', '2w', '45s' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if not m:
        raise ValueError(f"expected an age like 30d, 12h, 90m or 2w, got {text!r}")
    return float(m.group(1)) * SPANS[m.group(2)]


def human(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}T"


def span(seconds: float) -> str:
    for unit, size in (("w", SPANS["w"]), ("d", SPANS["d"]), ("h", SPANS["h"]), ("m", SPANS["m"])):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


@dataclass(frozen=True)
class Row:
    entry: Entry
    recipe: str
    step: str
    size: int
    age: float  # seconds since last use


def rows(store: Store) -> list[Row]:
    now, out = time.time(), []
    for e in store.entries():
        task = str(e.meta.get("task", "?:?:?"))
        recipe, _, step = task.partition(":")
        out.append(Row(e, recipe, step, e.size(), now - e.last_used()))
    return sorted(out, key=lambda r: (r.recipe, r.step, -r.age))


def verify(store: Store, repair: bool = False) -> list[tuple[Entry, str]]:
    """Re-hash every file of every entry (no memo); the corrupt ones, removed with `repair`."""
    bad = []
    for e in list(store.entries()):
        problem = store.check(e, memo=False)
        if problem:
            bad.append((e, problem))
            if repair:
                store.remove(e.key)
    return bad


def gc(store: Store, older_than: float | None, max_size: int | None) -> tuple[list[Row], list[Row]]:
    """Remove entries unused for `older_than` seconds, then the least recently used until the cache
    holds at most `max_size` bytes. Returns (removed, kept because a running build holds them)."""
    held = store.held()
    removed, spared = [], []
    all_rows = sorted(rows(store), key=lambda r: -r.age)  # oldest first
    total = sum(r.size for r in all_rows)
    for r in all_rows:
        old = older_than is not None and r.age > older_than
        big = max_size is not None and total > max_size
        if not (old or big):
            continue
        if r.entry.key in held or store.is_locked(r.entry.key):
            spared.append(r)
            continue
        store.remove(r.entry.key)
        removed.append(r)
        total -= r.size
    _clean_side_folders(store, older_than)
    return removed, spared


def _clean_side_folders(store: Store, older_than: float | None) -> None:
    """Stale temporary folders, and moved-aside corrupt entries past the age limit."""
    store.clean_tmp()
    limit = older_than if older_than is not None else 7 * SPANS["d"]
    for folder in (store.corrupt, store.root / "resolved"):
        for p in list(folder.iterdir()) if folder.is_dir() else []:
            if time.time() - p.stat().st_mtime > limit:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def total_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
