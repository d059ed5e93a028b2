"""`recipekit show`, `schema` and `list`: read-only views of recipes and the registries."""

from __future__ import annotations

import argparse
import json
import sys

from recipekit.cli.common import parse, recipe_args


def show(argv: list[str]) -> int:
    import yaml

    from recipekit.recipe.dump import to_raw
    from recipekit.recipe.load import load

    parser = argparse.ArgumentParser(prog="recipekit show")
    recipe_args(parser)
    args = parse(parser, argv)
    yaml.safe_dump(to_raw(load(args.recipe, args.overrides)), sys.stdout, sort_keys=False)
    return 0


def schema(argv: list[str]) -> int:
    from recipekit.recipe.jsonschema import recipe_schema

    parse(argparse.ArgumentParser(prog="recipekit schema"), argv)
    json.dump(recipe_schema(), sys.stdout, indent=1)
    print()
    return 0


def list_plugins(argv: list[str]) -> int:
    from recipekit.fixes import FIXES
    from recipekit.gates import GATES
    from recipekit.sources import SOURCES
    from recipekit.targets import TARGETS

    parse(argparse.ArgumentParser(prog="recipekit list"), argv)
    for heading, reg in (("sources", SOURCES), ("fixes", FIXES), ("targets", TARGETS), ("gates", GATES)):
        print(f"{heading}:")
        for name in reg.names():
            print(f"  {name:<24} {reg.entries[name]}")
    return 0


def invoke(command: str, argv: list[str]) -> int:
    return {"show": show, "schema": schema, "list": list_plugins}[command](argv)
