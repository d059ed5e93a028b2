"""Shared fixtures: run the CLI in-process."""

from __future__ import annotations

import pytest


@pytest.fixture
def cli(capfd):
    """Run `recipekit ARGS` in this process; returns (exit code, stdout, stderr)."""
    from recipekit.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        return code, out, err

    return run
