"""Shared test helpers: run the CLI in-process, and a small real recipe written into tmp dirs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"


def copy_recipes(dest: Path) -> Path:
    """A copy of recipes/ (with _base fragments) that a test may edit freely."""
    shutil.copytree(RECIPES, dest, dirs_exist_ok=True)
    return dest


@pytest.fixture
def cli(capfd):
    """Run `recipekit ARGS` in this process; returns (exit code, stdout, stderr)."""
    from recipekit.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        return code, out, err

    return run


def step_lines(out: str) -> dict[str, str]:
    """task -> status from the build's per-step lines."""
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[-1].count(":") >= 2 and parts[1].endswith("s"):
            rows[parts[-1]] = parts[0]
    return rows


def manifest(out_dir: Path, name: str, target: str) -> dict:
    return json.loads((out_dir / name / target / "manifest.json").read_text())
