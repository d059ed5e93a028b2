"""The globals a pickle asks for, read from its opcodes with `pickletools`, never executed.

Each name is kept as the unpickler will resolve it: a module (imported by its full name) and an
attribute path inside it. From protocol 4 on, `find_class` walks a dotted attribute path
(`_getattribute`), so STACK_GLOBAL('torch.nn.modules.conv', 'F.torch.os.system') reaches
`os.system` through a module that looks allowed; the split is what the allowlist judges. Python 2
names are mapped only where the unpickler maps them (protocols 0-2).
"""

from __future__ import annotations

import _compat_pickle
import functools
import io
import pickletools
import zipfile
from pathlib import Path
from typing import Any

from recipekit.sources.checkpoint.formats import CheckpointRefused, sniff

MAX_PICKLES = 5  # a legacy torch file is magic, protocol, sys info, object, storage keys
COMPUTED = "<computed global>"


class GlobalName(str):
    """`module.attr` as text (what messages show), with the unpickler's own split kept."""

    module: str
    attr: str

    def __new__(cls, module: str, attr: str) -> GlobalName:
        self = super().__new__(cls, f"{module}.{attr}" if module else attr)
        self.module, self.attr = module, attr
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return GlobalName, (self.module, self.attr)

    @property
    def dotted(self) -> bool:
        """An attribute path (`F.torch.os.system`), walked attribute by attribute from the module."""
        return "." in self.attr


def pickle_globals(stream: io.BufferedIOBase) -> list[GlobalName]:
    """Every global one pickle in `stream` names (GLOBAL, INST, STACK_GLOBAL), read without running it.

    STACK_GLOBAL takes its module and name from the stack: a small symbolic stack (strings and memo
    entries) recovers them; a name computed any other way is reported as '<computed global>'."""
    names: list[GlobalName] = []
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    mark = object()
    proto = 0
    for op, arg, _ in pickletools.genops(stream):
        code = op.code
        if op.name == "PROTO":
            proto = int(arg)
        if code in _NAMING:
            names.append(_global_name(op.name, arg, stack, proto))
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


def _global_name(opname: str, arg: Any, stack: list[Any], proto: int) -> GlobalName:
    if opname in ("GLOBAL", "INST"):
        module, _, attr = str(arg).partition(" ")
        return unpickler_name(module, attr, proto)
    if opname == "STACK_GLOBAL":
        mod, attr = (stack[-2], stack[-1]) if len(stack) >= 2 else (None, None)
        if isinstance(mod, str) and isinstance(attr, str):
            return unpickler_name(mod, attr, proto)
        return GlobalName("", COMPUTED)
    return GlobalName("", f"<copyreg extension {arg}>")


def unpickler_name(module: str, attr: str, proto: int) -> GlobalName:
    """The (module, attribute path) the unpickler resolves: Python 2 names mapped below protocol 3
    (`__builtin__.set` -> `builtins.set`), as `pickle.Unpickler.find_class` does."""
    if proto < 3:
        module, attr = _compat_pickle.NAME_MAPPING.get((module, attr), (module, attr))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return GlobalName(module, attr)


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


def needed_globals(path: Path) -> list[GlobalName]:
    """The globals a torch checkpoint asks for, in order, without unpickling it (CheckpointRefused if unreadable).

    Remembered per process by the file's identity and stat: plan and load scan once."""
    st = path.stat()
    return list(_needed_globals(str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino))


@functools.lru_cache(maxsize=64)
def _needed_globals(path_str: str, size: int, mtime_ns: int, inode: int) -> tuple[GlobalName, ...]:
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


def _legacy_globals(path: Path) -> list[GlobalName]:
    names: list[GlobalName] = []
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
