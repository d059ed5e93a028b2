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
    from recipekit.recipe.dump import to_raw

    url, mode = remote_settings(args)
    return {
        "remote_cache": url,
        "remote_mode": mode,
        "recipe": to_raw(recipe),
        "file": str(args.recipe),
        "base_dir": recipe.base_dir,
        "cache": str(cache_root(args)),
        "out": str(Path(args.out).resolve()),
        "force": getattr(args, "force", False),
        "require": getattr(args, "require", False),
    }


def summary(outcome: Any, recipe: Any, targets: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Per target: a line for people and the same as a JSON record ({"event": "target", ...})."""
    lines = []
    for target in targets:
        res = outcome.results.get(f"{recipe.name}:publish:{target}")
        failed = [
            r
            for r in outcome.failed()
            if r["task"].startswith(f"{recipe.name}:")
            and (f":{target}" in r["task"] or r["task"].split(":")[1] in {"export", "golden", "fix"})
        ]
        record = {"event": "target", "recipe": recipe.name, "target": target}
        if res and res["status"] in {"ran", "cached"} and res.get("reason"):  # published, a gate skipped
            text = f"{recipe.name}/{target}: published {res['path']}, UNVERIFIED ({res['reason']})"
            lines.append((text, {**record, "status": "unverified", "path": res["path"], "reason": res["reason"]}))
        elif res and res["status"] in {"ran", "cached"}:
            lines.append(
                (
                    f"{recipe.name}/{target}: published {res['path']}",
                    {**record, "status": "published", "path": res["path"]},
                )
            )
        elif res and res["status"] in {"unavailable", "unverified"}:
            text = f"{recipe.name}/{target}: {res['status']} ({res['reason']})"
            lines.append((text, {**record, "status": res["status"], "reason": res["reason"]}))
        else:
            why = "; ".join(f"{r['task']}: {r.get('error', '')}" for r in failed) or "not built"
            text = f"{recipe.name}/{target}: FAILED, nothing published ({why})"
            lines.append((text, {**record, "status": "failed", "reason": why}))
    return lines


def cells_of(outcome: Any, recipe: Any, steps: list, targets: list[str], out: Path) -> list:
    """The build's (recipe, target) cells, as the matrix reports them (for --junit and the CI summary)."""
    from recipekit.report.matrix import cell

    shared = [s.task for s in steps if s.target is None]
    return [
        cell(recipe.name, t, shared + [s.task for s in steps if s.target == t], outcome.results, out) for t in targets
    ]


def build(args: argparse.Namespace) -> int:
    from recipekit.graph.executors.warm import warm_start
    from recipekit.graph.plan import plan
    from recipekit.graph.runner import key_steps, run_steps
    from recipekit.recipe.load import load_pending

    writable_folder("--cache", cache_root(args))
    writable_folder("--out", Path(args.out).resolve())
    with warm_start([args.recipe], args.overrides, cache_root(args), args.jobs, args.force) as warm:
        recipe, remember = load_pending(args.recipe, args.overrides, cache_root(args))
        targets = targets_arg(args.targets) or list(recipe.targets)
        settings_by_recipe = {recipe.name: build_settings(recipe, args)}
        # keyed here: every input file found and hashed, so bad input stops before anything runs
        steps = key_steps(plan(recipe, targets), settings_by_recipe)
        remember()  # only a recipe that planned and keyed leaves anything behind
        with console_for(args) as console:
            outcome = run_steps(steps, settings_by_recipe, jobs=args.jobs, events=console, warm=warm)
            for text, record in summary(outcome, recipe, targets):
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
