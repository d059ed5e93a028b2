"""`recipekit build` and `recipekit plan`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from recipekit.cli.common import (
    cache_args,
    cache_root,
    ci_reports,
    console_for,
    jobs_arg,
    output_args,
    parse,
    recipe_args,
    remote_settings,
    targets_arg,
    writable_folder,
)


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"recipekit {command}")
    recipe_args(parser)
    cache_args(parser)
    parser.add_argument("--targets", help="comma-separated subset of the recipe's targets")
    if command == "build":
        parser.add_argument("--force", action="store_true", help="rebuild every step, ignoring the cache")
        parser.add_argument("-j", "--jobs", type=jobs_arg, default=1, help="independent steps in parallel (processes)")
        output_args(parser)
        parser.add_argument(
            "--require", action="store_true", help="a target that is unavailable here (no GPU) is an error"
        )
    else:
        parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    return parser


def build_settings(recipe: Any, args: argparse.Namespace) -> dict[str, Any]:
    from recipekit.graph.runner import build_settings as settings

    url, mode = remote_settings(args)
    return settings(
        recipe,
        args.recipe,
        cache_root(args),
        Path(args.out),
        remote_cache=url,
        remote_mode=mode,
        force=getattr(args, "force", False),
        require=getattr(args, "require", False),
    )


def cells_of(outcome: Any, recipe: Any, steps: list, targets: list[str], out: Path) -> list:
    """The build's (recipe, target) cells, as the matrix reports them (for --junit and the CI summary)."""
    from recipekit.report.matrix import cell

    shared = [s.task for s in steps if s.target is None]
    return [
        cell(recipe.name, t, shared + [s.task for s in steps if s.target == t], outcome.results, out) for t in targets
    ]


def build(args: argparse.Namespace) -> int:
    from recipekit.graph.executors.workers import warm_start

    writable_folder("--cache", cache_root(args))
    writable_folder("--out", Path(args.out).resolve())
    with warm_start([args.recipe], args.overrides, cache_root(args), args.force) as warm:
        # imported once the workers' forkserver is loading (the two overlap): it starts sooner
        from recipekit.graph.keys import key_steps
        from recipekit.graph.plan import plan
        from recipekit.graph.runner import run_steps
        from recipekit.recipe.load import load_pending
        from recipekit.report.console import target_lines

        recipe, remember = load_pending(args.recipe, args.overrides, cache_root(args))
        targets = targets_arg(args.targets) or list(recipe.targets)
        settings_by_recipe = {recipe.name: build_settings(recipe, args)}
        # keyed here: every input file found and hashed, so bad input stops before anything runs
        steps = key_steps(plan(recipe, targets), settings_by_recipe)
        remember()  # only a recipe that planned and keyed leaves anything behind
        with console_for(args) as console:
            outcome = run_steps(steps, settings_by_recipe, jobs=args.jobs, events=console, warm=warm)
            for text, record in target_lines(outcome.results, steps, recipe.name, targets):
                console.summary(text, record)
    ci_reports(
        args, cells_of(outcome, recipe, steps, targets, Path(args.out).resolve()), f"recipekit build {recipe.name}"
    )
    if any(r.get("exit_code") == 2 for r in outcome.failed()):
        return 2  # bad input found while building (the step's message names the file and key)
    return 0 if outcome.exit_code == 0 and not outcome.failed() else 1


def show_plan(args: argparse.Namespace) -> int:
    import json

    from recipekit.graph.plan import plan
    from recipekit.graph.status import statuses
    from recipekit.recipe.load import load

    recipe = load(args.recipe, args.overrides, cache_root(args), remember=False)  # plan writes nothing
    steps = plan(recipe, targets_arg(args.targets))
    rows = statuses(steps, build_settings(recipe, args))
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return 0
    for row in rows:
        print(
            f"{row['status']:<10} {row['key'] or '-':<64}  {row['task']}"
            + (f"  ({row['why']})" if row.get("why") else "")
        )
    return 0


def invoke(command: str, argv: list[str]) -> int:
    args = parse(_parser(command), argv)
    return build(args) if command == "build" else show_plan(args)
