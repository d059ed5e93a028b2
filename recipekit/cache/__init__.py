"""Content-addressed cache: one entry per step key, written atomically, locked per key."""

from recipekit.cache.store import Entry, Store

__all__ = ["Entry", "Store"]
