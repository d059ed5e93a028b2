"""`recipekit release` and `recipekit verify`: reproducible, checkable release folders."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from recipekit.cli.common import cache_args, console_for, jobs_arg, parse
from recipekit.core.errors import GateFailed, UsageError


def _release_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recipekit release",
        description="Build (or take from the cache) every cell, refuse any that did not pass, write dist/<V>/.",
    )
    p.add_argument("items", nargs="*", help="recipe files, then Hydra overrides applied to every recipe")
    cache_args(p)
    p.add_argument("--targets", help="comma-separated targets (default: each recipe's own)")
    p.add_argument("--version", required=True, help="release version: dist/<version>/")
    p.add_argument("--dist", default="dist", help="release root (default: ./dist)")
    p.add_argument("--archive", action="store_true", help="also write dist/<version>.tar.gz")
    p.add_argument("-j", "--jobs", type=jobs_arg, default=1)
    p.add_argument("--quiet", "-q", action="store_true")
    return p


def release(argv: list[str]) -> int:
    from recipekit.cli.matrix import plan_all, split_items
    from recipekit.core import tools
    from recipekit.graph.runner import run_steps
    from recipekit.report import release as rel
    from recipekit.report.matrix import cell

    args = parse(_release_parser(), argv)
    args.force, args.strict, args.report = False, True, None
    if not args.version or "/" in args.version or args.version.startswith("."):
        raise UsageError(f"--version: expected a plain version string, got {args.version!r}")
    recipes, overrides = split_items(args.items)
    steps, settings_by_recipe, planned = plan_all(args, recipes, overrides)
    with console_for(args) as console:
        outcome = run_steps(steps, settings_by_recipe, jobs=args.jobs, events=console)
    out_dir = Path(args.out).resolve()
    cells = [cell(r, t, x, outcome.results, out_dir) if isinstance(x, list) else None for r, t, x in planned]
    refused = [
        f"{r}/{t}: {c.status if c else 'n/a'} {c.reason if c else x}"
        for (r, t, x), c in zip(planned, cells, strict=False)
        if not c or c.status != "passed"
    ]
    if refused:
        raise GateFailed("release refused, these cells did not pass their gates:\n  " + "\n  ".join(refused))
    dest = Path(args.dist).resolve() / args.version
    work = Path(tempfile.mkdtemp(prefix=f".{args.version}.", dir=dest.parent if dest.parent.exists() else None))
    entries = [rel.add_cell(work, out_dir / c.recipe / c.target, c.recipe, c.target) for c in cells]
    for settings in settings_by_recipe.values():
        rel.add_recipe(work, settings["recipe"])
    rel.dump(work / "tools.lock.json", tools.versions())
    rel.dump(work / "release.json", {"version": args.version, "cells": entries, "overrides": overrides})
    rel.write_sums(work)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.move(str(work), dest)
    print(f"released {len(entries)} artifacts to {dest}")
    if args.archive:
        print(f"archive {rel.archive(dest)}")
    return 0


def _rebuild(dest: Path) -> list[str]:
    """Rebuild every resolved recipe with a fresh cache; artifacts must match byte for byte."""
    from recipekit.cli import main
    from recipekit.report import release as rel

    doc, problems = json.loads((dest / "release.json").read_text()), []
    with tempfile.TemporaryDirectory(prefix="recipekit-verify-") as tmp:
        for entry in doc["cells"]:
            recipe = dest / "recipes" / f"{entry['recipe']}.yaml"
            code = main(
                [
                    "build",
                    str(recipe),
                    "--targets",
                    entry["target"],
                    "--cache",
                    f"{tmp}/cache",
                    "--out",
                    f"{tmp}/out",
                    "-q",
                ]
            )
            rebuilt = Path(tmp) / "out" / entry["recipe"] / entry["target"] / Path(entry["artifact"]).name
            if code != 0 or not rebuilt.is_file():
                problems.append(f"{entry['artifact']}: rebuild failed (exit {code})")
            elif rel.sha256(rebuilt) != entry["sha256"]:
                problems.append(f"{entry['artifact']}: rebuilt artifact differs (sha256 {rel.sha256(rebuilt)})")
    return problems


def verify(argv: list[str]) -> int:
    from recipekit.core import tools
    from recipekit.report import release as rel

    p = argparse.ArgumentParser(
        prog="recipekit verify",
        description="Check a release: every hash, tool versions, and optionally a byte-for-byte rebuild.",
    )
    p.add_argument("release", help="dist/<version>/")
    p.add_argument(
        "--rebuild", action="store_true", help="rebuild from the resolved recipes and compare artifacts byte for byte"
    )
    args = parse(p, argv)
    dest = Path(args.release)
    if not (dest / "release.json").is_file():
        raise UsageError(f"{dest}: not a release folder (no release.json)")
    problems = rel.check_files(dest) + rel.check_manifests(dest)
    locked = json.loads((dest / "tools.lock.json").read_text()) if (dest / "tools.lock.json").is_file() else {}
    current = tools.versions()
    for name in sorted(set(locked) | set(current)):
        if locked.get(name) != current.get(name):
            print(f"tool {name}: release {locked.get(name)}, here {current.get(name)}")
    if args.rebuild and not problems:
        problems += _rebuild(dest)
    for line in problems:
        print(f"FAIL {line}")
    print(
        f"verify {dest}: {'FAILED' if problems else 'ok'} "
        f"({len(rel.read_sums(dest)) if (dest / rel.SUMS).is_file() else 0} files)"
    )
    return 1 if problems else 0


def invoke(command: str, argv: list[str]) -> int:
    return release(argv) if command == "release" else verify(argv)
