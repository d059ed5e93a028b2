"""`recipekit doit RECIPE... [overrides] [--targets ...] -- COMMAND [ARGS]`: doit's own commands on a
build's tasks (recipekit.doit), with recipekit's cache and doit state (`<cache>/doit/`).

What applies here: list, info, clean, ignore, forget, dumpdb, help. What does not, and why:
- run: `recipekit build` / `matrix` run these tasks with doit's runner, recipekit's console and
  reports (or run them from your own dodo.py with `doit`).
- strace: it traces the files a command action opens; recipekit's actions are Python functions
  whose inputs are already declared in their cache key.
- reset-dep: it records file_dep states without running; recipekit's tasks have no file_dep (the
  cache key is their dependency).
- tabcompletion: it completes `doit`'s own command line, not `recipekit doit`'s.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from recipekit.cli.common import cache_args, parse, remote_settings, targets_arg
from recipekit.core.errors import UsageError

NOT_HERE = {
    "run": "run the tasks with `recipekit build` or `recipekit matrix` (or `doit` in your own dodo.py)",
    "strace": "recipekit's actions are Python functions whose inputs are declared in their cache key",
    "reset-dep": "recipekit's tasks have no file_dep: their cache key is their dependency",
    "tabcompletion": "it completes `doit`'s own command line, not `recipekit doit`'s",
    "auto": "not a doit core command; rebuild with `recipekit build` when an input changes",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recipekit doit",
        usage="recipekit doit RECIPE... [overrides] [--targets T,...] [--cache DIR] -- COMMAND [ARGS]",
        description="doit's commands on a build's tasks: list, info, clean, ignore, forget, dumpdb, help.",
    )
    p.add_argument("items", nargs="*", help="recipe files, then Hydra overrides applied to every recipe")
    cache_args(p)
    p.add_argument("--targets", help="comma-separated subset of each recipe's targets")
    return p


def _commands() -> tuple[type, ...]:
    from doit.cmd_clean import Clean
    from doit.cmd_forget import Forget
    from doit.cmd_help import Help
    from doit.cmd_ignore import Ignore
    from doit.cmd_info import Info
    from doit.cmd_list import List

    from recipekit.graph.executors.local import DumpState

    return (Help, List, Info, Clean, Forget, Ignore, DumpState)


def invoke(command: str, argv: list[str]) -> int:
    from recipekit.cli.matrix import split_items
    from recipekit.doit import plan_recipes
    from recipekit.graph.doit_tasks import step_tasks
    from recipekit.graph.executors.local import Main, StepLoader, doit_config

    at = argv.index("--") if "--" in argv else len(argv)
    args, doit_args = parse(_parser(), argv[:at]), argv[at + 1 :]
    if at == len(argv):
        raise UsageError("recipekit doit: expected `-- COMMAND` after the recipes (`recipekit doit r.yaml -- list`)")
    doit_args = doit_args or ["list"]
    if doit_args[0] in NOT_HERE:
        raise UsageError(f"recipekit doit: `{doit_args[0]}` does not apply here: {NOT_HERE[doit_args[0]]}")
    recipes, overrides = split_items(args.items)
    url, mode = remote_settings(args)
    steps, settings_by_recipe = plan_recipes(
        recipes,
        overrides,
        targets=targets_arg(args.targets),
        cache=args.cache,
        out=args.out,
        remote_cache=url,
        remote_mode=mode,
        readonly=True,
    )
    tasks: list[dict[str, Any]] = list(step_tasks(steps, settings_by_recipe))
    loader = StepLoader(tasks, doit_config(args.cache))
    saved, sys.stdout = sys.stdout, _Output(sys.stdout)
    try:
        return int(Main(loader, _commands()).run(doit_args) or 0)
    except _ReaderGone:
        raise BrokenPipeError from None  # `recipekit doit r.yaml -- list | head`: the CLI stops quietly
    finally:
        sys.stdout = saved


class _ReaderGone(BaseException):
    """stdout's reader went away: doit reports any Exception with a traceback, so this is not one."""


class _Output:
    """sys.stdout for doit's commands, with a closed pipe raised past doit's error handling."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise _ReaderGone from None

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise _ReaderGone from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
