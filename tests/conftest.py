"""Shared fixtures: run the CLI in-process. Nothing a test imports may write into the home folder:
Ultralytics and matplotlib get a temporary config folder before any test imports them.

Disk: a full run writes about 12 GB of caches, exports and builds. A passing test's tmp_path goes
when the test ends (pyproject.toml: tmp_path_retention_policy = "failed"); what a module's fixtures
made with tmp_path_factory goes when the module ends, unless a test in it failed; so the run holds
one module's worth at a time, not the sum.
"""

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


def pytest_report_header(config):
    free = shutil.disk_usage(tempfile.gettempdir()).free / 2**30
    return f"disk: {free:.1f} GiB free in {tempfile.gettempdir()}"


@pytest.fixture(scope="module", autouse=True)
def _module_scratch(request, tmp_path_factory):
    """Removes the folders a module's fixtures made under the session's base temp once the module
    is done, unless a test failed meanwhile (then they stay for a look, as a failed test's tmp_path
    does). Session-scoped fixtures here use their own tempfile folders, so none is caught by this."""
    base = tmp_path_factory.getbasetemp()
    before = set(base.iterdir())
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed == failed:
        for path in set(base.iterdir()) - before:
            shutil.rmtree(path, ignore_errors=True)


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
