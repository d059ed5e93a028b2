"""Load weight files without running code from them: every source loads checkpoints through here.

A pickle can call any function while it is read (`__reduce__` -> `os.system`), so no checkpoint is
read with `torch.load(weights_only=False)`. Two halves:

- `check(path, family)` runs at plan time (every build, no-op ones too): it sniffs the format
  (torch zip, legacy torch pickle, safetensors) and lists the globals the pickle asks for by
  reading its opcodes with `pickletools`, never executing them. A name the family does not allow
  is refused with exit 2, naming it. No torch import: it is cheap.
- `load(path, family)` runs in the build step: `torch.load(weights_only=True)` with exactly the
  globals this file needs from the family's allowlist registered (`torch.serialization.safe_globals`).

Families: `state` (tensors and plain containers: torchvision, mmpose state dicts) and `ultralytics`
(Ultralytics' model and layer classes, the torch.nn layers they hold, and the few data classes a
trainer checkpoint pickles). `trust_code=True` is the user's explicit opt-in for their own checkpoint
with custom modules: then, and only then, the file is read with `weights_only=False`.
"""

from __future__ import annotations

import _compat_pickle
import functools
import io
import json
import pickletools
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipekit.core.errors import RecipeError

TRUST_HINT = "If this is your own checkpoint with custom modules, set source.trust_code: true (it may run code)"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
MAX_PICKLES = 5  # a legacy torch file is magic, protocol, sys info, object, storage keys

# Globals torch's weights_only unpickler allows by itself (a subset: what checkpoints use).
# tests/sources/test_checkpoint.py checks every name here is one torch allows.
TORCH_DATA = frozenset(
    {
        "_codecs.encode",
        "builtins.bytearray",
        "builtins.complex",
        "builtins.set",
        "collections.OrderedDict",
        "collections.Counter",
        "torch.Size",
        "torch.device",
        "torch.serialization._get_layout",
        "torch.nn.parameter.Parameter",
        "torch._tensor._rebuild_from_type_v2",
        "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
    }
    | {
        f"torch._utils._rebuild_{n}"
        for n in (
            "tensor",
            "tensor_v2",
            "tensor_v3",
            "parameter",
            "parameter_with_state",
            "qtensor",
            "sparse_tensor",
            "meta_tensor_no_storage",
            "device_tensor_from_cpu_tensor",
            "device_tensor_from_numpy",
        )
    }
    | {
        f"torch.{t}Storage"
        for t in (
            "BFloat16",
            "Bool",
            "Byte",
            "Char",
            "ComplexDouble",
            "ComplexFloat",
            "Double",
            "Float",
            "Half",
            "Int",
            "Long",
            "Short",
        )
    }
    | {
        f"torch.{d}"
        for d in (
            "bfloat16",
            "bool",
            "float16",
            "float32",
            "float64",
            "complex64",
            "complex128",
            "int8",
            "int16",
            "int32",
            "int64",
            "uint8",
            "per_tensor_affine",
            "per_channel_affine",
            "qint8",
            "quint8",
            "qint32",
        )
    }
)
# numpy values (training metrics are numpy floats): constructors of plain data, registered on demand.
NUMPY_DATA = frozenset(
    {f"numpy.{m}.multiarray.{n}" for m in ("core", "_core") for n in ("scalar", "_reconstruct")}
    | {"numpy.ndarray", "numpy.dtype"}
)
NUMPY_DTYPE_MODULE = "numpy.dtypes"


@dataclass(frozen=True)
class Family:
    """What one kind of checkpoint may hold: exact data names, and module prefixes of layer classes."""

    name: str
    label: str  # "which <label> checkpoints do not hold"
    data: frozenset[str] = frozenset()
    module_prefixes: tuple[str, ...] = ()
    getattr_ok: bool = False  # pickled bound methods (`getattr(layer, 'forward')`) of allowed classes
    extra: dict[str, str] = field(default_factory=dict)  # pickled name -> "module:attr" it stands for

    def allows(self, name: str) -> bool:
        """Decided on the name alone (plan time, nothing imported); `load` also checks the object."""
        if name in TORCH_DATA or name in NUMPY_DATA or name in self.data or name in self.extra:
            return True
        if name.startswith(NUMPY_DTYPE_MODULE + ".") and name.endswith("DType"):
            return True
        if name == "builtins.getattr":
            return self.getattr_ok
        module = name.rpartition(".")[0]
        return any(module == p or module.startswith(p + ".") for p in self.module_prefixes)


FAMILIES = {
    "state": Family("state", "state-dict"),
    "ultralytics": Family(
        "ultralytics",
        "Ultralytics",
        data=frozenset({"ultralytics.utils.IterableSimpleNamespace", "pathlib.PosixPath"}),
        module_prefixes=("ultralytics.nn.modules", "ultralytics.nn.tasks", "torch.nn.modules"),
        getattr_ok=True,
        extra={
            "ultralytics.nn.tasks.YOLOv10DetectionModel": "ultralytics.nn.tasks:DetectionModel",
            "ultralytics.nn.modules.block.Silence": "torch.nn:Identity",
        },
    ),
    "mmpose": Family("mmpose", "MMPose", data=frozenset({"mmengine.logging.history_buffer.HistoryBuffer"})),
}


class CheckpointRefused(RecipeError):
    """A weights file that is not a checkpoint, or one asking for code: exit 2, the file and name said."""


# ---- plan time: sniff and scan, nothing imported, nothing executed ----------------------------


def sniff(path: Path) -> str:
    """'torch-zip', 'torch-pickle' (legacy torch.save or a plain pickle), 'safetensors' or 'torchscript';
    else CheckpointRefused. Reads headers only (and a pickle's opcodes, never running them)."""
    if zipfile.is_zipfile(path):
        names = _zip_names(path)
        if any(n.endswith("/constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "torch-zip"
    elif path.stat().st_size >= 9 and _safetensors_header(path) is not None:
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


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return []


def _safetensors_header(path: Path) -> dict[str, Any] | None:
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


def pickle_globals(stream: io.BufferedIOBase) -> list[str]:
    """Every global one pickle in `stream` names (GLOBAL, INST, STACK_GLOBAL), read without running it.

    STACK_GLOBAL takes its module and name from the stack: a small symbolic stack (strings and memo
    entries) recovers them; a name computed any other way is reported as '<computed global>'."""
    names: list[str] = []
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    mark = object()
    for op, arg, _ in pickletools.genops(stream):
        code = op.code
        if code in _NAMING:
            names.append(_global_name(op.name, arg, stack))
        if code in _MEMO_PUT:
            memo[len(memo) if op.name == "MEMOIZE" else arg] = stack[-1] if stack else None
            continue
        _apply_stack_effect(op, stack, mark)
        if code in _MEMO_GET:
            stack[-1] = memo.get(arg)
        elif code in _STRINGS:
            stack[-1] = str(arg)
        elif code == "(":
            stack[-1] = mark
    return names


def _codes(*names: str) -> frozenset[str]:
    return frozenset(op.code for op in pickletools.opcodes if op.name in names)


_NAMING = _codes("GLOBAL", "INST", "STACK_GLOBAL", "EXT1", "EXT2", "EXT4")
_MEMO_PUT = _codes("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE")
_MEMO_GET = _codes("GET", "BINGET", "LONG_BINGET")
_STRINGS = frozenset(op.code for op in pickletools.opcodes if "UNICODE" in op.name or "STRING" in op.name)


def _global_name(opname: str, arg: Any, stack: list[Any]) -> str:
    if opname in ("GLOBAL", "INST"):
        return _py3_name(*str(arg).split(" ", 1))
    if opname == "STACK_GLOBAL":
        mod, attr = (stack[-2], stack[-1]) if len(stack) >= 2 else (None, None)
        return _py3_name(mod, attr) if isinstance(mod, str) and isinstance(attr, str) else "<computed global>"
    return f"<copyreg extension {arg}>"


def _py3_name(module: str, name: str) -> str:
    """The Python 3 name of a pickled global, as the unpickler maps it (`__builtin__.set` -> `builtins.set`)."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}"


def _effect(op: Any) -> tuple[bool, int, int]:
    """(pops to a mark, items popped besides, items pushed) of one opcode, from pickletools' description."""
    before = op.stack_before
    to_mark = pickletools.markobject in before
    pops = len([b for b in before if b not in (pickletools.markobject, pickletools.stackslice)])
    return to_mark, pops, len(op.stack_after)


_EFFECTS = {op.code: _effect(op) for op in pickletools.opcodes}


def _apply_stack_effect(op: Any, stack: list[Any], mark: object) -> None:
    to_mark, pops, pushes = _EFFECTS[op.code]
    if to_mark:
        while stack and stack.pop() is not mark:
            pass
    if pops:
        del stack[max(0, len(stack) - pops) :]
    if pushes:
        stack.extend((None,) * pushes)


def needed_globals(path: Path) -> list[str]:
    """The globals a torch checkpoint asks for, in order, without unpickling it (CheckpointRefused if unreadable).

    Remembered per process by the file's identity and stat: plan and load scan once."""
    st = path.stat()
    return list(_needed_globals(str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino))


@functools.lru_cache(maxsize=64)
def _needed_globals(path_str: str, size: int, mtime_ns: int, inode: int) -> tuple[str, ...]:
    path = Path(path_str)
    kind = sniff(path)
    try:
        if kind == "torch-zip":
            with zipfile.ZipFile(path) as zf:
                pkl = next(n for n in zf.namelist() if n.endswith("data.pkl"))
                return tuple(pickle_globals(io.BytesIO(zf.read(pkl))))
        if kind == "torch-pickle":
            return tuple(_legacy_globals(path))
    except (ValueError, EOFError, zipfile.BadZipFile, OSError, KeyError) as exc:
        raise CheckpointRefused(str(path), "", f"{path.name} is not a readable checkpoint: {exc}") from None
    return ()


def _legacy_globals(path: Path) -> list[str]:
    names: list[str] = []
    with open(path, "rb") as fh:
        for i in range(MAX_PICKLES):
            start = fh.tell()
            try:
                names += pickle_globals(fh)
            except (ValueError, EOFError):
                if i == 0:
                    raise
                fh.seek(start)
                break
    return names


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
    return (
        f"{path.name} asks to load {names[0]}{more}, which {FAMILIES[family].label} checkpoints do not hold; refused "
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
    module, _, attr = name.rpartition(".")
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
    names = [n for n in dict.fromkeys(needed_globals(path)) if n not in TORCH_DATA]
    bad = [n for n in names if not fam.allows(n)]
    entries = []
    for name in names:
        obj = None if name in bad else _resolve(name, fam)
        if obj is not None:
            entries.append((obj, name))
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
