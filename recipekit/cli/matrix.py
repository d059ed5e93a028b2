"""`recipekit matrix`: every recipe x every requested target in one run, with reports."""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path
from typing import Any

from recipekit.cli.common import (
    cache_args,
    ci_reports,
    console_for,
    jobs_arg,
    output_args,
    parse,
    remote_settings,
    targets_arg,
)
from recipekit.core.errors import UsageError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recipekit matrix",
        description="Build every recipe for every target; one export per recipe shared by its cells.",
    )
    p.add_argument(
        "items", nargs="*", help="recipe files (default: recipes/*.yaml), then Hydra overrides applied to every recipe"
    )
    cache_args(p)
    p.add_argument("--targets", help="comma-separated targets (default: each recipe's own)")
    p.add_argument("-j", "--jobs", type=jobs_arg, default=1, help="independent steps in parallel (processes)")
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run the steps on a Dask cluster (needs --remote-cache: the files travel through it)",
    )
    p.add_argument("--report", help="folder for matrix.json, matrix.md and matrix.html")
    p.add_argument("--strict", action="store_true", help="unavailable, unverified and n/a cells count as failures")
    p.add_argument("--force", action="store_true", help="rebuild every step")
    p.add_argument("--no-latency", action="store_true", help="do not add the latency gate to every cell")
    output_args(p)
    return p


def split_items(items: list[str]) -> tuple[list[str], list[str]]:
    """Recipe files and overrides (`key=value`, `+key`, `~key`) may be given in any order."""
    overrides = [i for i in items if "=" in i or i.startswith(("+", "~"))]
    recipes = [i for i in items if i not in overrides] or sorted(glob.glob("recipes/*.yaml"))
    if not recipes:
        raise UsageError("no recipes given and none in recipes/*.yaml")
    return recipes, overrides


def with_target(recipe: Any, target: str) -> tuple[Any, str | None]:
    """The recipe with `target` added at its defaults if it lacks it, or why it cannot take it."""
    from recipekit.recipe.schema import TargetEntry
    from recipekit.targets import TARGETS

    if target not in TARGETS:
        raise UsageError(f"--targets: {TARGETS.unknown_message(target)}")
    why = TARGETS.get(target).refuses(recipe)
    if why or target in recipe.targets:
        return recipe, why
    added = {**recipe.targets, target: TargetEntry(config=TARGETS.get(target).Config())}
    return recipe.model_copy(update={"targets": added}), None


def with_latency(recipe: Any) -> Any:
    """The recipe with the latency gate added (timings per batch size for the report's plot)."""
    from recipekit.gates import GATES

    return recipe.model_copy(update={"gates": {**recipe.gates, "latency": GATES.get("latency").Config()}})


def _unplannable(recipe: Any, target: str) -> str | None:
    """Why the steps of (recipe, target) cannot even be planned (e.g. a gate option it refuses)."""
    from recipekit.core.errors import RecipeKitError
    from recipekit.graph.plan import plan

    try:
        plan(recipe, [target])
    except RecipeKitError as exc:
        return str(exc)
    return None


def plan_all(args: argparse.Namespace, recipes: list[str], overrides: list[str]) -> tuple[list, dict, list]:
    from recipekit.cli.build import build_settings
    from recipekit.graph.plan import plan
    from recipekit.recipe.load import load

    steps, settings_by_recipe, cells = [], {}, []  # cells: (recipe, target, tasks | reason)
    for path in recipes:
        recipe = load(path, overrides, Path(args.cache).resolve())
        if not getattr(args, "no_latency", True) and "latency" not in recipe.gates:
            recipe = with_latency(recipe)
        if recipe.name in settings_by_recipe:
            raise UsageError(f"{path}: recipe name {recipe.name!r} is used twice in this matrix")
        plan(recipe, list(recipe.targets))  # recipe-level errors (bad input) stop the matrix: exit 2
        wanted = targets_arg(args.targets) or list(recipe.targets)
        takes = []
        for target in wanted:
            recipe, why = with_target(recipe, target)
            why = why or _unplannable(recipe, target)
            cells.append((recipe.name, target, why)) if why else takes.append(target)
        if takes:
            settings_by_recipe[recipe.name] = build_settings(
                recipe, argparse.Namespace(**{**vars(args), "recipe": path, "require": False})
            )
            mine = plan(recipe, takes)
            steps += [s for s in mine if s.task not in {x.task for x in steps}]
            shared = [s.task for s in mine if s.target is None]
            cells += [(recipe.name, t, shared + [s.task for s in mine if s.target == t]) for t in takes]
    return steps, settings_by_recipe, cells


def write_reports(folder: Path, cells: list, meta: dict[str, Any]) -> None:
    from recipekit.report.html import render
    from recipekit.report.matrix import to_json, to_markdown

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "matrix.json").write_text(
        json.dumps(to_json(cells, meta), indent=1, sort_keys=True, default=float) + "\n"
    )
    (folder / "matrix.md").write_text(to_markdown(cells))
    (folder / "matrix.html").write_text(render(cells, meta))


def invoke(command: str, argv: list[str]) -> int:
    args = parse(_parser(), argv)
    if args.scheduler:
        from recipekit.graph.executors.cluster import check_scheduler

        check_scheduler(args.scheduler, *remote_settings(args))
    from recipekit.graph.executors.workers import warm_start

    recipes, overrides = split_items(args.items)
    ahead = [] if args.scheduler else recipes  # on a cluster the steps run elsewhere: nothing to load here
    with warm_start(ahead, overrides, Path(args.cache).resolve(), args.force) as warm:
        from recipekit.graph.runner import run_steps  # once the forkserver is loading: it starts sooner
        from recipekit.report.matrix import Cell, cell, cell_record, terminal

        steps, settings_by_recipe, planned = plan_all(args, recipes, overrides)
        out_dir = Path(args.out).resolve()
        with console_for(args) as console:
            if args.scheduler and steps:
                from recipekit.graph.executors.cluster import on_scheduler

                outcome = on_scheduler(args.scheduler, steps, settings_by_recipe, events=console)
            else:
                outcome = (
                    run_steps(steps, settings_by_recipe, jobs=args.jobs, events=console, warm=warm) if steps else None
                )
            cells = [
                cell(r, t, x, outcome.results, out_dir) if isinstance(x, list) else Cell(r, t, "n/a", x)
                for r, t, x in planned
            ]
            console.text(terminal(cells))
            if args.json:
                for c in cells:
                    console.summary("", cell_record(c))
    ci_reports(args, cells, "recipekit matrix")
    if args.report:
        write_reports(
            Path(args.report),
            cells,
            {"targets": sorted({c.target for c in cells}), "recipes": recipes, "overrides": overrides},
        )
    bad = {"failed", "error"} | ({"unavailable", "unverified", "n/a"} if args.strict else set())
    return 1 if any(c.status in bad for c in cells) else 0
