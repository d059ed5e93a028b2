"""The tree before a change, importable side by side with this one in one benchmark run.

`reference_tree(commit, dest)` extracts the commit's files (git archive); `env_for(tree)` runs a
command with that tree's `recipekit` first on PYTHONPATH (the venv and its packages are shared) and
bytecode caching on, as a user's install has it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE_DOIT = "bc974d7"
"""main before issue 23 (the task graph on doit): the default reference."""


def reference_tree(ref: str, dest: Path) -> Path:
    """The reference commit's files (git archive), importable through PYTHONPATH."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def env_for(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": str(tree)}


def cwd_of(env: dict[str, str] | None) -> str:
    """Where to run a command with `env`: in its tree (`python -m` and `-c` put the working folder
    first on sys.path, before PYTHONPATH: another tree's recipekit/ there would shadow it)."""
    return (env or {}).get("PYTHONPATH") or str(ROOT)


def load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def arguments(runs: int, imgsz: int) -> argparse.ArgumentParser:
    """--runs, --imgsz and --reference (default: main before doit), with this benchmark's defaults."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=runs)
    ap.add_argument("--imgsz", type=int, default=imgsz)
    ap.add_argument("--reference", default=BEFORE_DOIT, help="commit to compare with (default: main before doit)")
    return ap
