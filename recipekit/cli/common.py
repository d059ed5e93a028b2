"""Arguments shared by the commands that take a recipe."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def recipe_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe file (recipes/*.yaml)")
    parser.add_argument(
        "overrides", nargs="*", help="Hydra-grammar overrides, e.g. export.opset=17 export.imgsz=[320,480] fixes=[]"
    )


def cache_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache",
        default=os.environ.get("RECIPEKIT_CACHE", "cache"),
        help="cache folder (default: ./cache or $RECIPEKIT_CACHE)",
    )
    parser.add_argument("--out", default="build", help="publish root: build/<name>/<target>/ (default: ./build)")


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Options may come before, between or after the overrides."""
    from recipekit.core.errors import UsageError

    try:
        return parser.parse_intermixed_args(argv)
    except SystemExit as exc:
        if exc.code:
            raise UsageError("see the usage above") from None
        raise


def targets_arg(value: str | None) -> list[str] | None:
    return [t.strip() for t in value.split(",") if t.strip()] if value else None


def cache_root(args: argparse.Namespace) -> Path:
    return Path(args.cache).resolve()
