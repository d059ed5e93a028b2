"""The recipe's JSON Schema, with every registered plugin's own Config schema filled in."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def _plugin_schema(cls: type[BaseModel]) -> dict[str, Any]:
    return cls.model_json_schema(mode="validation")


def recipe_schema() -> dict[str, Any]:
    from recipekit.fixes import FIXES
    from recipekit.gates import GATES
    from recipekit.recipe.load import RawRecipe
    from recipekit.sources import SOURCES
    from recipekit.targets import TARGETS

    doc = RawRecipe.model_json_schema(mode="validation")
    doc["title"] = "recipekit recipe"
    props = doc["properties"]
    props["source"] = {"oneOf": [_plugin_schema(SOURCES.get(n).Config) for n in SOURCES.names()]}
    gates = {n: _plugin_schema(GATES.get(n).Config) for n in GATES.names()}
    props["gates"] = {"type": "object", "properties": gates, "additionalProperties": False}
    targets = {}
    for n in TARGETS.names():
        sch = _plugin_schema(TARGETS.get(n).Config)
        sch.setdefault("properties", {})["gates"] = props["gates"]
        targets[n] = sch
    props["targets"] = {"type": "object", "properties": targets, "additionalProperties": False, "minProperties": 1}
    fixes = [{"const": n} for n in FIXES.names()]
    fixes += [
        {
            "type": "object",
            "properties": {n: _plugin_schema(FIXES.get(n).Config)},
            "required": [n],
            "additionalProperties": False,
        }
        for n in FIXES.names()
    ]
    props["fixes"] = {"type": "array", "items": {"oneOf": fixes}}
    props["defaults"] = {"type": "array", "description": "Hydra defaults list: shared fragments, then _self_"}
    return doc
