"""Shared test helpers: paths, recipe copies, reading build output and manifests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"


def copy_recipes(dest: Path) -> Path:
    """A copy of recipes/ (with _base fragments) that a test may edit freely."""
    shutil.copytree(RECIPES, dest, dirs_exist_ok=True)
    return dest


def step_lines(out: str) -> dict[str, str]:
    """task -> status from the build's per-step lines."""
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2].count(":") >= 2 and parts[1].endswith("s"):
            rows[parts[2]] = parts[0]
    return rows


def manifest(out_dir: Path, name: str, target: str) -> dict:
    return json.loads((out_dir / name / target / "manifest.json").read_text())
