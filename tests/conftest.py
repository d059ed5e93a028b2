"""Shared fixtures: run the CLI in-process. Nothing a test imports may write into the home folder:
Ultralytics and matplotlib get a temporary config folder before any test imports them."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

_CONFIG = tempfile.mkdtemp(prefix="recipekit-tests-")
atexit.register(shutil.rmtree, _CONFIG, True)  # the test session leaves nothing in $TMPDIR either
for _var in ("YOLO_CONFIG_DIR", "MPLCONFIGDIR"):
    os.environ.setdefault(_var, _CONFIG)
os.environ.setdefault("YOLO_OFFLINE", "1")


@pytest.fixture
def cli(capfd):
    """Run `recipekit ARGS` in this process; returns (exit code, stdout, stderr). Bad input (exit 2)
    is one clear line, never a traceback: every such call checks it."""
    from recipekit.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        assert code != 2 or "Traceback" not in err, err
        return code, out, err

    return run
