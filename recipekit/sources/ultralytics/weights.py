"""Ultralytics models from an architecture YAML or a weights file, never running code from the file.

A full Ultralytics checkpoint (`best.pt`: the pickled model) is read through the one safe loader,
`recipekit.sources.checkpoint` (family `ultralytics`: only Ultralytics' and torch.nn's classes may
be named by the pickle). A plain state dict (a safetensors file, or a torch.save of tensors) fills
the architecture `source.model` names, strictly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from recipekit.core.errors import RecipeError

if TYPE_CHECKING:
    from torch import nn

    from recipekit.sources.ultralytics.arch import Arch


def checkpoint_arch(path: Path, origin: str, trust_code: bool = False) -> Arch | None:
    """The head a checkpoint's pickle names (plan time, nothing executed); None for a state dict."""
    from recipekit.sources import checkpoint
    from recipekit.sources.ultralytics.arch import from_checkpoint_globals

    if checkpoint.check(path, "ultralytics", trust_code) == "safetensors":
        return None
    return from_checkpoint_globals(checkpoint.needed_globals(path), str(path), origin)


def load_checkpoint_model(path: Path, trust_code: bool = False) -> nn.Module:
    """A full Ultralytics checkpoint as Ultralytics loads it (YOLO or RTDETR, fused), its pickle read
    by the safe loader."""
    from ultralytics import YOLO

    from recipekit.sources.ultralytics.loading import ultralytics_loading

    with ultralytics_loading(trust_code):
        return YOLO(str(path)).model.float().eval()


def from_yaml(spec: str | Path, arch: Arch, trust_code: bool = False) -> nn.Module:
    """The architecture's model with Ultralytics' own initialisation (seeded by the caller), its YAML
    parsed in Ultralytics' restricted mode."""
    from ultralytics import RTDETR, YOLO

    from recipekit.sources.ultralytics.loading import ultralytics_loading

    with ultralytics_loading(trust_code):
        return (RTDETR if arch.rtdetr else YOLO)(str(spec)).model


def load_state(model: nn.Module, path: Path, trust_code: bool = False) -> None:
    """A state dict into the architecture, strictly: a mismatch names what is missing or unexpected."""
    from recipekit.sources import checkpoint

    state = checkpoint.state_dict(path, trust_code)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RecipeError(
            str(path),
            "source.weights",
            f"weights do not fit {getattr(model, 'yaml', {}).get('yaml_file', 'source.model')}: missing "
            f"{list(missing)[:5]}, unexpected {list(unexpected)[:5]} (check source.model)",
        )
    model.float().eval()
