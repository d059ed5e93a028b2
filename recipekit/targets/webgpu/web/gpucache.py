"""Chromium's GPU caches kept between gate runs, in the cache folder, one set per Chromium version.

Each run still gets a fresh profile (runs stay independent, and two builds never share a live
profile); before Chromium starts, the kept cache folders are copied in, and after it has exited
they are copied back under a lock (last writer wins: each set is complete, none is half written).
What is kept is Chromium's own, self-validating caches: Dawn's WebGPU cache, the GPU program
caches and V8's code cache (which holds the compiled onnxruntime-web wasm). Nothing in them is a
build output or read by recipekit; a different Chromium gets a different set. Those caches are
partitioned by the page's origin, so the runner page is served from one loopback port per cache
set (`preferred_port`) when that port is free (another on 127.0.0.1 otherwise: correct, just cold).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

KEPT = (
    "Default/DawnWebGPUCache",
    "Default/GPUCache",
    "Default/DawnGraphiteCache",
    "Default/Code Cache",
    "GPUPersistentCache",
    "GraphiteDawnCache",
    "GrShaderCache",
    "ShaderCache",
)
PORTS = (20000, 60000)


class GpuCache:
    """The kept caches of one Chromium version under `root` (None: nothing is kept)."""

    def __init__(self, root: Path | None, chromium_version: str | None) -> None:
        slug = re.sub(r"[^A-Za-z0-9.]+", "-", chromium_version or "unknown").strip("-")[:60]
        self.folder = root / f"chromium-{slug}" if root is not None else None

    def preferred_port(self) -> int:
        if self.folder is None:
            return 0
        digest = int(hashlib.sha256(str(self.folder).encode()).hexdigest()[:8], 16)
        return PORTS[0] + digest % (PORTS[1] - PORTS[0])

    def seed(self, profile: Path) -> None:
        """Copy the kept caches into a new profile (before Chromium starts)."""
        if self.folder is None or not self.folder.is_dir():
            return
        for name in KEPT:
            src = self.folder / name
            if src.is_dir():
                shutil.copytree(src, profile / name, dirs_exist_ok=True)

    def keep(self, profile: Path) -> None:
        """Copy a finished profile's caches back (after Chromium has exited); errors only cost speed."""
        if self.folder is None:
            return
        from filelock import FileLock

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.folder) + ".lock", timeout=60):
                for name in KEPT:
                    src = profile / name
                    if src.is_dir():
                        _replace(src, self.folder / name)
        except (OSError, TimeoutError):
            pass


def _replace(src: Path, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    old = dest.with_name(dest.name + ".old")
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
