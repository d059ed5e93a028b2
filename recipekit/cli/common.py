"""Arguments shared by the commands that take a recipe."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


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
    parser.add_argument(
        "--remote-cache",
        action="append",
        metavar="URL|MODE",
        help="shared cache at an fsspec URL (s3://bucket/prefix, gs://, az://, file://); default "
        "$RECIPEKIT_REMOTE_CACHE. Given again as read-only, it fetches but never uploads; off disables it",
    )


def remote_settings(args: argparse.Namespace) -> tuple[str | None, str]:
    """(url, mode) of the remote cache the command line and environment name."""
    values = getattr(args, "remote_cache", None)
    if not values and not os.environ.get("RECIPEKIT_REMOTE_CACHE"):
        return None, "read-write"  # none named (what url_and_mode says then, without importing it)
    from recipekit.cache.remote import url_and_mode
    from recipekit.core.errors import UsageError

    try:
        return url_and_mode(values, os.environ.get("RECIPEKIT_REMOTE_CACHE"))
    except ValueError as exc:
        raise UsageError(f"--remote-cache: {exc}") from None


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Options may come before, between or after the overrides. A bad --remote-cache is refused here,
    before any recipe is read."""
    from recipekit.core.errors import UsageError

    def error(message: str) -> None:  # argparse's own message on the one error line, usage above it
        parser.print_usage(sys.stderr)
        raise UsageError(f"{parser.prog}: {message}")

    parser.error = error  # type: ignore[method-assign]
    try:
        args = parser.parse_intermixed_args(argv)
    except SystemExit as exc:
        if exc.code:
            raise UsageError("see the usage above") from None
        raise
    if hasattr(args, "remote_cache"):
        remote_settings(args)
    return args


MAX_JOBS = 64


def jobs_arg(value: str) -> int:
    """-j N: a whole number of processes from 1 to MAX_JOBS (each worker holds a model in memory)."""
    try:
        jobs = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of processes, got {value!r}") from None
    if not 1 <= jobs <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_JOBS} processes, got {jobs}")
    return jobs


def writable_folder(option: str, folder: Path) -> None:
    """Refuse before any work a --cache/--out that cannot be a writable folder (UsageError, exit 2).

    Looks only: nothing is created (plan writes nothing)."""
    from recipekit.core.errors import UsageError

    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(f"{option} {folder}: {probe} is a file, expected a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {folder}: {probe} is not writable (permission denied); choose another folder")


def targets_arg(value: str | None) -> list[str] | None:
    return [t.strip() for t in value.split(",") if t.strip()] if value else None


def cache_root(args: argparse.Namespace) -> Path:
    return Path(args.cache).resolve()


def output_args(parser: argparse.ArgumentParser) -> None:
    """--quiet, --json and --junit: how a run shows itself to people, tools and CI."""
    parser.add_argument("--quiet", "-q", action="store_true", help="print only failures and the summary")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per line on stdout: step started/finished, results"
    )
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report, one test case per recipe/target")


def console_for(args: argparse.Namespace) -> Any:
    """The run's console (a step-event sink): live on a terminal, plain lines otherwise, or JSON lines."""
    from recipekit.report.console import StepConsole, choose_mode

    return StepConsole(choose_mode(getattr(args, "json", False)), quiet=getattr(args, "quiet", False))


def ci_reports(args: argparse.Namespace, cells: list, title: str) -> None:
    """--junit FILE, and a Markdown summary appended to $GITHUB_STEP_SUMMARY when that is set."""
    from recipekit.report import ci

    if getattr(args, "junit", None):
        ci.write_junit(Path(args.junit), cells, title)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        ci.append_step_summary(Path(os.environ["GITHUB_STEP_SUMMARY"]), cells, title)
