"""Content-addressed cache: one entry per step key, written atomically, locked per key.

`Entry` and `Store` load with their module (cache.store) on first use: the command line checks a
--remote-cache URL (cache.remote) before anything else, and needs no store for that."""

from __future__ import annotations

from typing import Any

__all__ = ["Entry", "Store"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from recipekit.cache import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
