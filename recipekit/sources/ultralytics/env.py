"""Make Ultralytics run offline and write nothing outside recipekit's folders.

Set before the first `import ultralytics`: no hub calls, no pip auto-install, settings in a
temporary folder instead of the user's home.
"""

from __future__ import annotations

import os


def _settings_dir() -> str:
    """A temporary settings folder, removed at exit (or by the next build's sweep if this one is killed)."""
    from recipekit.core.lifetime import make_tempdir, remove_at_exit

    path = make_tempdir("ultralytics")
    remove_at_exit(path)
    return str(path)


def prepare() -> None:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ.setdefault("YOLO_VERBOSE", "false")
    if "YOLO_CONFIG_DIR" not in os.environ:
        os.environ["YOLO_CONFIG_DIR"] = str(_settings_dir())
    os.environ.setdefault("MPLCONFIGDIR", os.environ["YOLO_CONFIG_DIR"])  # Ultralytics imports matplotlib
