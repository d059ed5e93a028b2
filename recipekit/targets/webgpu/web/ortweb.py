"""Where the project's pinned onnxruntime-web lives, and which of its files each bundle needs.

The version is the one `web/package.json` pins and `web/package-lock.json` locks; `npm ci` in
`web/` (scripts/install-web.sh) installs it. Gates run that exact copy, so what passes here is
what the artifact ships. RECIPEKIT_WEB_DIR points elsewhere (e.g. an installed package's data).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from recipekit.targets.webgpu.bundles import BUNDLES as ALL

# bundle -> (entry module in dist/, the wasm glue it loads): recipekit.targets.webgpu.bundles says what each is.
BUNDLES: dict[str, tuple[str, str]] = {name: (b.entry, b.glue) for name, b in ALL.items()}
CDN = "https://cdn.jsdelivr.net/npm/onnxruntime-web@{version}/dist/"
INSTALL_HINT = "run scripts/install-web.sh (npm ci in web/)"


def web_dir() -> Path:
    """The folder holding package.json / package-lock.json (default: <repo>/web)."""
    env = os.environ.get("RECIPEKIT_WEB_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[4] / "web"


def pinned_version(folder: Path | None = None) -> str | None:
    """The exact onnxruntime-web version web/package.json pins (None if the file is missing)."""
    pkg = (folder or web_dir()) / "package.json"
    if not pkg.is_file():
        return None
    return json.loads(pkg.read_text()).get("dependencies", {}).get("onnxruntime-web")


@dataclass(frozen=True)
class OrtWeb:
    """An installed onnxruntime-web: its version and its dist/ folder."""

    version: str
    dist: Path

    def files(self, bundle: str) -> list[str]:
        """The dist/ files a page needs for `bundle` (entry module, wasm glue and binary)."""
        entry, glue = BUNDLES[bundle]
        return [entry, f"{glue}.mjs", f"{glue}.wasm"]


def find_ortweb(folder: Path | None = None) -> tuple[OrtWeb | None, str]:
    """The installed, up-to-date onnxruntime-web, or None with the exact reason it is unusable."""
    folder = folder or web_dir()
    want = pinned_version(folder)
    if want is None:
        return None, f"no onnxruntime-web pin in {folder / 'package.json'}"
    pkg = folder / "node_modules" / "onnxruntime-web" / "package.json"
    if not pkg.is_file():
        return None, f"npm package onnxruntime-web {want} is not installed in {folder / 'node_modules'}: {INSTALL_HINT}"
    have = json.loads(pkg.read_text()).get("version")
    if have != want:
        return (
            None,
            f"onnxruntime-web {have} is installed in {folder / 'node_modules'} but {want} is pinned: {INSTALL_HINT}",
        )
    ort = OrtWeb(have, pkg.parent / "dist")
    missing = [f for b in BUNDLES for f in ort.files(b) if not (ort.dist / f).is_file()]
    if missing:
        return None, f"onnxruntime-web {have} in {ort.dist} lacks {', '.join(missing)}: {INSTALL_HINT}"
    return ort, ""
