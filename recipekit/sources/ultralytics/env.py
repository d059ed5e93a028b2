"""Make Ultralytics run offline and write nothing outside recipekit's folders.

Set before the first `import ultralytics`: no hub calls, no pip auto-install, settings in a
temporary folder instead of the user's home.
"""

from __future__ import annotations

import os
import tempfile


def prepare() -> None:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ.setdefault("YOLO_VERBOSE", "false")
    if "YOLO_CONFIG_DIR" not in os.environ:
        os.environ["YOLO_CONFIG_DIR"] = tempfile.mkdtemp(prefix="recipekit-ultralytics-")
    os.environ.setdefault("MPLCONFIGDIR", os.environ["YOLO_CONFIG_DIR"])  # Ultralytics imports matplotlib
