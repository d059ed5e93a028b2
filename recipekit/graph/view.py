"""A step's view of the recipe: only the sections its key hashes.

`project(recipe, reads)` keeps the sections a step reads (targets cut down to its own target, and
gate settings to the gates it reads); every other section is a `Denied` value that raises
`UnhashedRead` naming the step and the section on any use. `dump_view` is the JSON the step's key
hashes, made from the same projection, so what a stage can see and what its key hashes cannot
drift apart.
"""

from __future__ import annotations

from typing import Any

from recipekit.recipe.schema import Recipe, TargetEntry

ALL_SECTIONS = ("name", "source", "input", "export", "fixes", "targets", "gates")
"""The recipe's sections, in order: what a step may be given to read (graph.plan's `reads`)."""


class UnhashedRead(RuntimeError):
    """A stage read a recipe section its key does not hash: an internal error (a missing declaration)."""


class Denied:
    """Stands for a recipe section the step may not read."""

    def __init__(self, task: str, section: str) -> None:
        self._task, self._section = task, section

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._deny()

    def _deny(self, *_: Any, **__: Any) -> Any:
        raise UnhashedRead(
            f"internal error: step {self._task or '?'} read recipe section {self._section!r}, which its key does not "
            "hash (declare it in the plugin's recipe_reads / reads_gates)"
        )

    __getitem__ = __iter__ = __len__ = __bool__ = __contains__ = __eq__ = __call__ = __str__ = __format__ = _deny  # type: ignore[assignment]
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<recipe section {self._section!r} not readable by {self._task}>"


def _configured_gates(recipe: Recipe, target: str | None, gates: list[str]) -> dict[str, Any]:
    entry = recipe.targets.get(target) if target else None
    out = {}
    for g in gates:
        cfg = (entry.gates.get(g) if entry else None) or recipe.gates.get(g)
        if cfg is not None:
            out[g] = cfg
    return out


def _sections(recipe: Recipe, reads: dict[str, Any]) -> dict[str, Any]:
    target, allowed = reads.get("target"), set(reads["sections"])
    out: dict[str, Any] = {}
    for name in allowed:
        out[name] = getattr(recipe, name)
    for name, fields in (reads.get("reset") or {}).items():  # fields the step does not read: their defaults
        if name in out:
            section = out[name]
            defaults = {f: type(section).model_fields[f].get_default(call_default_factory=True) for f in fields}
            out[name] = section.model_copy(update=defaults)
    if target is not None:
        gates = _configured_gates(recipe, target, reads.get("gates", []))
        if "targets" in allowed:
            out["targets"] = {target: TargetEntry(config=recipe.targets[target].config, gates=gates)}
        if "gates" in allowed:
            out["gates"] = gates
    return out


def project(recipe: Recipe, reads: dict[str, Any], task: str = "") -> Recipe:
    """The recipe as the step sees it (a Recipe whose unread sections raise on use)."""
    kept = _sections(recipe, reads)
    fields = {name: kept[name] if name in kept else Denied(task, name) for name in ALL_SECTIONS}
    return Recipe.model_construct(**fields, base_dir=recipe.base_dir, origin=recipe.origin)


def _json(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def dump_view(recipe: Recipe, reads: dict[str, Any]) -> dict[str, Any]:
    """What the step's key hashes of the recipe: the projection's sections as JSON."""
    return {name: _json(value) for name, value in sorted(_sections(recipe, reads).items())}
