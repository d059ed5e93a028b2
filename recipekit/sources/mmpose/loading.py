"""mmengine's checkpoint loading (used by mmpose and mmdeploy), routed through recipekit's safe loader."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recipekit.sources.checkpoint import load


@contextmanager
def mmengine_loading(trust_code: bool = False) -> Iterator[None]:
    """While inside, mmengine's `load_checkpoint` (used by mmpose and mmdeploy) reads files through
    `load` (family `mmpose`) instead of its own `torch.load`."""
    from mmengine.runner import checkpoint as mm

    original = mm._load_checkpoint

    def _load_checkpoint(filename: Any, map_location: Any = None, logger: Any = None) -> Any:
        return load(Path(filename), "mmpose", trust_code)

    mm._load_checkpoint = _load_checkpoint
    try:
        yield
    finally:
        mm._load_checkpoint = original
