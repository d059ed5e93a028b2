"""Step keys: sha256 of canonical JSON of everything that can change a step's output. Full hashes.

A step's key hashes its kind, plugin, config (including its recipe view), what its stage module
declares (`key_parts`: versions, tools, environment, declared input files by content) and the
KEYS of its upstream steps. So every key of a build is known at plan time without building
anything (`plan` shows them all, a remote cache can be asked before running), and an output is
still checked by its file digests whenever it is read.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.cache.digests import digest_of

if TYPE_CHECKING:
    from recipekit.cache.digests import DigestMemo
    from recipekit.graph.plan import Step


def step_key(kind: str, plugin: str, config: Any, inputs: dict[str, Any]) -> str:
    """The cache key of one step: `inputs` holds version, tools, files, upstream keys, environment."""
    return digest_of({"kind": kind, "plugin": plugin, "config": config, "inputs": inputs})


def _keyed(step: Step, recipe: Any, memo: DigestMemo, keys: dict[str, str]) -> Step:
    from recipekit.graph.stages import stage
    from recipekit.graph.view import project

    parts = stage(step.kind).key_parts(step, project(recipe, step.reads, step.task))
    files = {name: Path(p).resolve() for name, p in sorted(parts.files.items())}
    inputs = {
        "version": parts.version,
        "tools": parts.tools,
        "files": {name: memo.digest(p) for name, p in files.items()},
        "upstream": {role: keys[dep] for role, dep in sorted(step.deps.items())},
        "environment": parts.environment,
    }
    key = step_key(step.kind, step.plugin, step.config, inputs)
    return replace(step, key=key, inputs=inputs, files={n: str(p) for n, p in files.items()})


def assign_keys(steps: list[Step], settings: dict[str, Any], readonly: bool = False) -> list[Step]:
    """`steps` (in plan order: upstreams first) with their keys, key inputs and declared files.

    `readonly` (plan): the digest memo learns nothing on disk."""
    from recipekit.cache.digests import DigestMemo
    from recipekit.core.errors import RecipeError
    from recipekit.graph.context import recipe_from

    recipe = recipe_from(settings)
    memo = DigestMemo(Path(settings["cache"]).resolve() / "digests.json", readonly=True)
    keys: dict[str, str] = {}
    out = []
    for step in steps:
        try:
            keyed = _keyed(step, recipe, memo, keys)
        except RecipeError as exc:  # a missing sample or weight file: bad input, before anything runs
            raise RecipeError(recipe.origin or settings["file"], exc.key_path, exc.msg) from None
        keys[step.task] = keyed.key
        out.append(keyed)
    if not readonly:  # only a recipe whose every input is good leaves anything behind
        memo.flush()
    return out


def key_steps(steps: list[Step], settings_by_recipe: dict[str, dict[str, Any]], readonly: bool = False) -> list[Step]:
    """Every step with its key, recipe by recipe (`settings_by_recipe`: recipe name -> build
    settings; task names start with `<recipe>:`); steps keyed already are kept."""
    by_recipe: dict[str, list[Step]] = {}
    for s in steps:
        by_recipe.setdefault(s.task.split(":", 1)[0], []).append(s)
    keyed = {}
    for name, mine in by_recipe.items():
        if all(s.key for s in mine):
            keyed.update({s.task: s for s in mine})
        else:
            keyed.update({s.task: s for s in assign_keys(mine, settings_by_recipe[name], readonly=readonly)})
    return [keyed[s.task] for s in steps]
