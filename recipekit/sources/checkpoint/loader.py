"""Checking and loading weight files without running code from them.

- `check(path, family)` runs at plan time (every build, no-op ones too): the file's format, and every
  global its pickle asks for against the family's allowlist. No torch import: it is cheap.
- `load(path, family)` runs in the build step: `torch.load(weights_only=True)` with exactly the
  globals this file needs from the family's allowlist registered (`torch.serialization.safe_globals`).
  `trust_code=True` (the recipe's `source.trust_code`) is the only way to `weights_only=False`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipekit.sources.checkpoint.allow import FAMILIES, NUMPY_DATA, NUMPY_DTYPE_MODULE, TORCH_DATA, Family
from recipekit.sources.checkpoint.formats import CheckpointRefused, sniff
from recipekit.sources.checkpoint.pickles import GlobalName, needed_globals

TRUST_HINT = "If this is your own checkpoint with custom modules, set source.trust_code: true (it may run code)"


def refused_names(path: Path, family: str) -> list[str]:
    """The names `path` asks for that `family` does not allow (empty: the file may be loaded)."""
    fam = FAMILIES[family]
    seen: list[str] = []
    for name in needed_globals(path):
        if not fam.allows(name) and name not in seen:
            seen.append(name)
    return seen


def check(path: Path, family: str = "state", trust_code: bool = False, key: str = "source.weights") -> str:
    """Plan-time check of a weights file: its format, and that it asks for nothing outside `family`.

    Returns the format. Raises CheckpointRefused (exit 2) naming the file and the first refused name."""
    try:
        kind = sniff(path)
    except OSError as exc:
        raise CheckpointRefused(str(path), key, f"cannot read weights file {path}: {exc.strerror}") from None
    except CheckpointRefused as exc:
        raise CheckpointRefused(str(path), key, exc.msg) from None
    if kind == "torchscript":
        raise CheckpointRefused(
            str(path),
            key,
            f"{path.name} is a TorchScript archive, not a checkpoint; give the "
            "checkpoint (torch.save) or a safetensors file",
        )
    if trust_code or kind == "safetensors":
        return kind
    try:
        bad = refused_names(path, family)
    except CheckpointRefused as exc:
        raise CheckpointRefused(str(path), key, exc.msg) from None
    if bad:
        raise CheckpointRefused(str(path), key, _refusal(path, bad, family))
    return kind


def _refusal(path: Path, names: list[str], family: str) -> str:
    more = f" (and {len(names) - 1} more: {', '.join(names[1:4])})" if len(names) > 1 else ""
    first = names[0]
    if isinstance(first, GlobalName) and first.dotted:
        first = f"{first} (attribute path {first.attr} walked from module {first.module})"
    return (
        f"{path.name} asks to load {first}{more}, which {FAMILIES[family].label} checkpoints do not hold; refused "
        f"without running it. {TRUST_HINT}"
    )


# ---- build time: torch.load(weights_only=True) with exactly the needed globals ------------------


def _resolve(name: str, fam: Family) -> Any:
    """The object an allowed name stands for, or None when the name is allowed but the object is not
    (not a class of the right kind)."""
    import importlib

    from torch import nn

    if name in fam.extra:
        module, _, attr = fam.extra[name].partition(":")
        return getattr(importlib.import_module(module), attr, None)
    if name == "builtins.getattr":
        return _method_getattr
    module, attr = (name.module, name.attr) if isinstance(name, GlobalName) else name.rpartition(".")[::2]
    try:
        obj = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None
    if name in TORCH_DATA or name in NUMPY_DATA or name in fam.data:
        return obj
    if module.startswith(NUMPY_DTYPE_MODULE):
        import numpy as np

        return obj if isinstance(obj, type) and issubclass(obj, np.dtype) else None
    return obj if isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == module else None


def _method_getattr(obj: Any, name: str) -> Any:
    """`getattr` as a checkpoint may use it: a method of a torch.nn layer class or instance, nothing else."""
    import pickle

    from torch import nn

    cls = obj if isinstance(obj, type) else type(obj)
    if issubclass(cls, nn.Module) and not name.startswith("_") and callable(getattr(cls, name, None)):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"getattr({cls.__name__}, {name!r}) refused: not a layer's method")


def _safe_entries(path: Path, fam: Family) -> list[Any]:
    unique: dict[tuple[str, str], GlobalName] = {}
    for n in needed_globals(path):  # by (module, attribute path): one text can hide two splits
        unique.setdefault((n.module, n.attr), n)
    names = [n for n in unique.values() if n not in TORCH_DATA or not fam.allows(n)]
    bad = [n for n in names if not fam.allows(n)]
    entries = []
    for name in names:
        obj = None if name in bad else _resolve(name, fam)
        if obj is not None:
            entries.append((obj, str(name)))
        elif name not in bad:
            bad.append(name)
    if bad:
        raise CheckpointRefused(str(path), "source.weights", _refusal(path, bad, fam.name))
    if "numpy.dtype" in names:  # a dtype's own class (numpy.dtypes.Float64DType) is made at run time
        entries += _numpy_dtype_classes()
    return entries


def _numpy_dtype_classes() -> list[Any]:
    import numpy as np

    return [c for c in vars(np.dtypes).values() if isinstance(c, type) and issubclass(c, np.dtype)]


def _torch_refusal(exc: Exception) -> str:
    """The one line of torch's weights_only error that says what it refused."""
    text = str(exc)
    for line in text.splitlines():
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].strip().split(". ")[0]
    return text.splitlines()[0] if text else type(exc).__name__


def load(path: Path, family: str = "state", trust_code: bool = False) -> Any:
    """The checkpoint at `path` (a torch.save file or safetensors), loaded without running its code.

    `trust_code=True` (the recipe's `source.trust_code`) is the only way to `weights_only=False`."""
    import pickle

    import torch

    path = Path(path)
    kind = check(path, family, trust_code)
    if kind == "safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    if trust_code:
        return torch.load(path, map_location="cpu", weights_only=False)  # the user's explicit opt-in
    entries = _safe_entries(path, FAMILIES[family])
    try:
        with torch.serialization.safe_globals(entries):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointRefused(
            str(path),
            "source.weights",
            f"{path.name} refused by torch's safe loader: {_torch_refusal(exc)}. {TRUST_HINT}",
        ) from None
    except (RuntimeError, EOFError) as exc:
        raise CheckpointRefused(
            str(path), "source.weights", f"{path.name} is not a readable checkpoint: {str(exc).splitlines()[0]}"
        ) from None


def state_dict(
    path: Path, trust_code: bool = False, family: str = "state", keys: tuple[str, ...] = ("state_dict", "model")
) -> dict[str, Any]:
    """A state dict from a safetensors file or a torch checkpoint (unwrapping the first of `keys` present)."""
    data = load(path, family, trust_code)
    for k in keys:
        if isinstance(data, dict) and isinstance(data.get(k), dict):
            data = data[k]
            break
    if not isinstance(data, dict):
        raise CheckpointRefused(
            str(path),
            "source.weights",
            f"{path.name} holds a {type(data).__name__}, not a state dict (tensor names -> tensors)",
        )
    return data
