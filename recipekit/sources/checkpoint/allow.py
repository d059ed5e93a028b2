"""What each family of checkpoints may ask its unpickler for, decided on the names alone.

A name is allowed when it is exactly one of the data constructors torch's own weights_only loader
allows (or numpy's), one of the family's data names, or a class directly inside one of the family's
module prefixes (`ultralytics.nn.modules.conv.Conv`). An attribute path (`conv.F.torch.os.system`,
which protocol 4 resolves attribute by attribute) is never allowed, and a prefix-allowed module must
exist on the Python path as a module file (located, not imported): what `load` would refuse, the
plan refuses first.
"""

from __future__ import annotations

import functools
import importlib.machinery
import sys
from dataclasses import dataclass, field

from recipekit.sources.checkpoint.pickles import GlobalName

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
        if isinstance(name, GlobalName) and (name.dotted or not name.module):
            return False  # an attribute path walked from a module, or a name computed at run time
        if name in TORCH_DATA or name in NUMPY_DATA or name in self.data or name in self.extra:
            return True
        if name.startswith(NUMPY_DTYPE_MODULE + ".") and name.endswith("DType"):
            return True
        if name == "builtins.getattr":
            return self.getattr_ok
        module = name.module if isinstance(name, GlobalName) else name.rpartition(".")[0]
        under = any(module == p or module.startswith(p + ".") for p in self.module_prefixes)
        return under and module_exists(module)


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


@functools.lru_cache(maxsize=256)
def module_exists(name: str) -> bool:
    """Whether `name` is a module the import system would find, located on sys.path without importing
    (executing) anything: `torch.nn.modules.conv.F` is an attribute, not a module."""
    path: list[str] | None = None
    for i, part in enumerate(name.split(".")):
        if not part.isidentifier():
            return False
        spec = importlib.machinery.PathFinder.find_spec(part, path if i else list(sys.path))
        if spec is None:
            return False
        path = list(spec.submodule_search_locations or [])
        if not path and i < name.count("."):
            return False
    return True
