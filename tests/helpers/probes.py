"""Functions a test runs in another process (importable there by name)."""

from __future__ import annotations

import os
import sys


def heavy_and_settings() -> dict:
    """What this process has imported, and the Ultralytics settings it would use."""
    return {
        "torch": "torch" in sys.modules,
        "ultralytics": "ultralytics" in sys.modules,
        "offline": os.environ.get("YOLO_OFFLINE"),
        "settings": os.environ.get("YOLO_CONFIG_DIR", ""),
    }
