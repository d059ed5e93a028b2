"""recipekit's build steps as doit tasks, for your own `dodo.py`.

    from recipekit.doit import tasks

    def task_fetch_weights():
        return {"actions": [...], "targets": ["weights/yolo11n.pt"], "uptodate": [True]}

    @create_after(executed="fetch_weights")   # the recipe reads that file: plan once it is there
    def task_models():
        yield from tasks(["recipes/yolo11n.yaml"], ["source.weights=weights/yolo11n.pt"], targets=["ort"])

    def task_upload():
        return {"actions": [...], "task_dep": ["yolo11n:publish:ort"], "file_dep": ["build/yolo11n/ort/model.onnx"]}

Every step is a task named `<recipe>:<kind>:<plugin>` (`yolo11n:export:ultralytics`,
`yolo11n:gate:ort.parity`, `yolo11n:publish:ort`), and each recipe a task named after it that
depends on its publish steps. Whether a step is up to date is the cache's answer (its key: a hash
of everything that can change the output), never doit's own state; `doit clean TASK` evicts the
step's cache entry and those of the steps built from it. `doit -n N` runs them in parallel.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["plan_recipes", "tasks"]


def plan_recipes(
    recipes: Iterable[str | Path],
    overrides: Iterable[str] = (),
    *,
    targets: Iterable[str] | None = None,
    cache: str | Path = "cache",
    out: str | Path = "build",
    remote_cache: str | None = None,
    remote_mode: str = "read-write",
    force: bool = False,
    readonly: bool = False,
) -> tuple[list[Any], dict[str, dict[str, Any]]]:
    """The keyed steps of building `recipes` (Hydra `overrides` applied to each) for `targets`
    (default: each recipe's own), and each recipe's build settings. RecipeKitError on bad input.

    `readonly`: nothing is written into the cache (no composition or digest memo), as `plan`."""
    from recipekit.core.errors import UsageError
    from recipekit.graph.keys import key_steps
    from recipekit.graph.plan import plan
    from recipekit.graph.runner import build_settings
    from recipekit.recipe.load import load

    steps: list[Any] = []
    settings_by_recipe: dict[str, dict[str, Any]] = {}
    chosen = list(targets) if targets else None
    for path in recipes:
        recipe = load(path, list(overrides), Path(cache).resolve(), remember=not readonly)
        if recipe.name in settings_by_recipe:
            raise UsageError(f"{path}: recipe name {recipe.name!r} is used twice")
        settings = build_settings(
            recipe, str(path), Path(cache), Path(out), remote_cache=remote_cache, remote_mode=remote_mode, force=force
        )
        settings_by_recipe[recipe.name] = settings
        steps += key_steps(plan(recipe, chosen), {recipe.name: settings}, readonly=readonly)
    return steps, settings_by_recipe


def tasks(
    recipes: Iterable[str | Path],
    overrides: Iterable[str] = (),
    *,
    targets: Iterable[str] | None = None,
    cache: str | Path = "cache",
    out: str | Path = "build",
    remote_cache: str | None = None,
    task_dep: Iterable[str] = (),
) -> Iterator[dict[str, Any]]:
    """Yield the doit task dicts of building `recipes` for `targets` (a task generator's body).

    `task_dep`: your tasks that every recipekit step waits for (one that fetches data, say). When
    such a task makes a file the recipe reads, create recipekit's tasks after it has run (doit's
    `create_after`): a step's key hashes its input files, so they must exist when it is planned.
    A recipe that does not load, plan or key is doit's InvalidTask (one line, doit exits 3)."""
    from doit.exceptions import InvalidTask

    from recipekit.core.errors import RecipeKitError
    from recipekit.graph.doit_tasks import step_tasks

    try:
        steps, settings_by_recipe = plan_recipes(
            recipes, overrides, targets=targets, cache=cache, out=out, remote_cache=remote_cache
        )
    except RecipeKitError as exc:
        raise InvalidTask(f"recipekit: {exc}") from None
    extra = list(task_dep)
    for task in step_tasks(steps, settings_by_recipe):
        if extra and task.get("actions") and not task["task_dep"]:
            task["task_dep"] = extra
        yield task
