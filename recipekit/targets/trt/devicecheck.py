"""`recipekit device-check BUNDLE --backend ort|trt`: run a Jetson bundle's own check program.

The program that judges the engine on the device is the bundle's check.py, not recipekit's code:
running that same file here (with ONNX Runtime, or TensorRT on a GPU machine) proves the bundle's
golden data, tolerances and checker agree before it ships. It runs in a subprocess with the
current Python, so the check sees only what the device would: the bundle's files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from recipekit.core.errors import UsageError

BACKENDS = ("ort", "trt")


def device_check(bundle: Path, backend: str, extra: list[str] | None = None) -> int:
    """The exit status of `python check.py --backend BACKEND` in the bundle (0: every case passed)."""
    bundle = Path(bundle).resolve()
    check = bundle / "check.py"
    if backend not in BACKENDS:
        raise UsageError(f"--backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if not check.is_file() or not (bundle / "bundle.json").is_file():
        raise UsageError(f"{bundle}: not a trt-jetson bundle (expected check.py and bundle.json)")
    cmd = [sys.executable, str(check), "--backend", backend, *(extra or [])]
    return subprocess.run(cmd, cwd=bundle, check=False).returncode
