"""Plugin registries: one static name -> "module:Class" table per plugin role.

The table is the single source of truth: `recipekit list` reads it without importing any plugin,
and a plugin module is imported only when a recipe names it. A plugin module itself imports heavy
libraries (torch, onnxruntime, tensorrt) only inside its methods, so importing it is cheap.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any


class Registry:
    """Maps a recipe's kebab-case names to plugin classes, importing them lazily."""

    def __init__(self, role: str, entries: dict[str, str]) -> None:
        self.role = role  # what its plugins are: source, fix, target, gate
        self.entries = dict(entries)
        self._loaded: dict[str, type] = {}

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def unknown_message(self, name: str) -> str:
        near = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        return f"unknown {self.role} '{name}'{hint}; known: {', '.join(self.names())}"

    def get(self, name: str) -> Any:
        """The plugin class registered as `name`; KeyError with a helpful message if unknown."""
        if name not in self.entries:
            raise KeyError(self.unknown_message(name))
        if name not in self._loaded:
            module, _, attr = self.entries[name].partition(":")
            cls = getattr(importlib.import_module(module), attr)
            if getattr(cls, "name", None) != name:
                raise TypeError(f"{self.entries[name]} declares name {cls.name!r}, registered as {name!r}")
            self._loaded[name] = cls
        return self._loaded[name]
