"""Every recipe in recipes/ as doit tasks: `doit list`, `doit -n 2`, `doit yolo11n`, `doit clean TASK`.

recipekit's steps are ordinary doit tasks (recipekit.doit), so a dodo file can mix them with its own:
a task that fetches weights before a recipe is planned, one that uploads what a publish step wrote.
Whether a step is up to date is the cache's answer (cache/), never doit's own state (kept beside it).
"""

from pathlib import Path

from recipekit.doit import tasks

RECIPES = sorted((Path(__file__).resolve().parent / "recipes").glob("*.yaml"))
CACHE = Path("cache")
(CACHE / "doit").mkdir(parents=True, exist_ok=True)
DOIT_CONFIG = {"dep_file": str(CACHE / "doit" / "state.sqlite3"), "backend": "sqlite3", "verbosity": 0}


def task_recipekit():
    """recipekit's build steps of every recipe (one task per step; one per recipe: its publish steps)"""
    yield from tasks(RECIPES, cache=CACHE, out="build")
