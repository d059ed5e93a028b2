"""Which format a weights file is in, from its header: torch zip, legacy torch pickle, safetensors,
TorchScript. Nothing is imported or unpickled."""

from __future__ import annotations

import json
import pickletools
import struct
import zipfile
from pathlib import Path
from typing import Any

from recipekit.core.errors import RecipeError


class CheckpointRefused(RecipeError):
    """A weights file that is not a checkpoint, or one asking for code: exit 2, the file and name said."""


def sniff(path: Path) -> str:
    """'torch-zip', 'torch-pickle' (legacy torch.save or a plain pickle), 'safetensors' or 'torchscript';
    else CheckpointRefused. Reads headers only (and a pickle's opcodes, never running them)."""
    if zipfile.is_zipfile(path):
        names = zip_names(path)
        if any(n.endswith("/constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "torch-zip"
    elif path.stat().st_size >= 9 and safetensors_header(path) is not None:
        return "safetensors"
    elif _is_pickle(path):
        return "torch-pickle"
    raise CheckpointRefused(
        str(path),
        "",
        f"{path.name} is not a checkpoint: expected a PyTorch file (torch.save zip "
        "or pickle) or safetensors, found neither",
    )


def _is_pickle(path: Path) -> bool:
    with open(path, "rb") as fh:
        try:
            for _ in pickletools.genops(fh):
                pass
        except (ValueError, EOFError):
            return False
    return True


def zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return []


def safetensors_header(path: Path) -> dict[str, Any] | None:
    """The JSON header of a safetensors file (8-byte little-endian length, then JSON), or None."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if not 2 <= n <= min(size - 8, 100 << 20):
            return None
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    ok = isinstance(header, dict) and all(
        k == "__metadata__" or (isinstance(v, dict) and {"dtype", "shape", "data_offsets"} <= set(v))
        for k, v in header.items()
    )
    return header if ok else None
