"""A resolved Recipe back to the recipe format (what `show` prints and a release stores).

The output loads again with `recipe.load.validate` to an equal Recipe: every default is explicit.
"""

from __future__ import annotations

from typing import Any

from recipekit.recipe.schema import Recipe


def _plugin(cfg: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    data = cfg.model_dump(mode="json")
    return {k: v for k, v in data.items() if k not in drop}


def to_raw(recipe: Recipe) -> dict[str, Any]:
    return {
        "name": recipe.name,
        "source": _plugin(recipe.source),
        "input": recipe.input.model_dump(mode="json"),
        "export": recipe.export.model_dump(mode="json"),
        "fixes": [{f.name: _plugin(f.config)} for f in recipe.fixes],
        "targets": {
            name: {**_plugin(t.config), **({"gates": {g: _plugin(c) for g, c in t.gates.items()}} if t.gates else {})}
            for name, t in recipe.targets.items()
        },
        "gates": {name: _plugin(cfg) for name, cfg in recipe.gates.items()},
    }
