"""Ultralytics' own checkpoint loading, routed through recipekit's safe loader while a model is built.

Ultralytics' `torch_safe_load` unpickles with weights_only=False; inside `ultralytics_loading` it reads
through `recipekit.sources.checkpoint.load` (family `ultralytics`) instead, and model YAMLs are parsed
in Ultralytics' restricted mode (activations parsed, not `eval`-ed).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recipekit.sources.checkpoint import load


@contextmanager
def ultralytics_loading(trust_code: bool = False) -> Iterator[None]:
    """While inside, Ultralytics reads checkpoints through `load` (family `ultralytics`), not through its
    own `torch_safe_load` (which unpickles with weights_only=False), and builds models from YAML in its
    restricted mode (activations parsed, not `eval`-ed; only layer classes may be named). `YOLO(path)`
    keeps every other step of Ultralytics' own loading (argument merge, fuse, compatibility updates)."""
    from ultralytics.nn import tasks

    original = tasks.torch_safe_load
    local = tasks._SafeLoad._local
    was_active = getattr(local, "active", False)

    def torch_safe_load(weight: Any, safe_only: Any = None) -> tuple[Any, str]:
        return load(Path(weight), "ultralytics", trust_code), str(weight)

    tasks.torch_safe_load = torch_safe_load
    local.active = not trust_code
    try:
        yield
    finally:
        tasks.torch_safe_load = original
        local.active = was_active
