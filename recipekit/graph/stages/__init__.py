"""One module per step kind. Each has `key_parts(step, recipe) -> KeyParts` (what the key hashes
besides the step's config and its upstream keys) and `run(ctx) -> Output` (the work).

A new step kind is one module here plus one line in STAGES (and its result model in
graph/results.py). Modules are imported when a step of their kind is keyed or run.
"""

from __future__ import annotations

import importlib
from types import ModuleType

STAGES = {
    "export": "recipekit.graph.stages.export",
    "golden": "recipekit.graph.stages.golden",
    "fix": "recipekit.graph.stages.fix",
    "precision": "recipekit.graph.stages.precision",
    "compile": "recipekit.graph.stages.compile",
    "gate": "recipekit.graph.stages.gate",
    "publish": "recipekit.graph.stages.publish",
}


def stage(kind: str) -> ModuleType:
    return importlib.import_module(STAGES[kind])
