"""What a factory reads while it builds its model: only the files the recipe declares.

A factory may load its own trained weights (`PNet(pretrained=True)` reads a file its package ships).
Every such file must be declared (`source.files`), so it is hashed into the export key and checked at
plan like any checkpoint. While the factory runs:
- a Python audit hook sees every `open` (and `io.open_code`); a path that is not declared is refused
  (the open fails, and the build stops with exit 2 naming it), except the code of the interpreter's path
  and of imported packages (modules, zip archives on sys.path, and the text files describing an
  architecture that packages ship beside their code: .yaml, .json, .txt, ...) and the operating
  system's files (/proc, /sys, /dev, /etc, /usr: os-release, locales), and what a library reads while
  it is imported (its own settings file). Weights are never code: a `.pt`,
  `.pth`, `.onnx`, `.safetensors`, `.npz` ... is read only when declared, a package's own included;
- `torch.load` of a declared file goes through recipekit's safe loader (`checkpoint.load`, family
  `state`: tensors and plain containers), whatever `weights_only` the factory passes;
- the audit event `pickle.find_class` refuses any global outside that family to a plain `pickle`
  load, so a factory that unpickles with pickle itself runs no code either.
`trust_code: true` lifts the last two (recorded in the manifest); undeclared files stay refused.
Reads by native code that bypasses Python's `open` (a C++ library opening a path itself) are not seen.
"""

from __future__ import annotations

import contextvars
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CODE_SUFFIXES = (".py", ".pyc", ".pyi", ".so", ".pyd")
CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".txt", ".cfg", ".toml", ".ini")
"""Text a package ships beside its code to describe an architecture (Ultralytics' model YAMLs)."""
SYSTEM = ("/proc/", "/sys/", "/dev/", "/etc/", "/usr/")
"""The operating system's files (os-release, locales, time zones, fonts): a library may probe them."""
WEIGHT_SUFFIXES = (
    ".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".onnx", ".npz", ".npy", ".pkl", ".pickle", ".h5",
    ".params", ".pdparams", ".tflite", ".engine", ".tar", ".zip", ".gz",
)  # fmt: skip
"""Files that hold weights: read only when declared, wherever they lie (a package's own included)."""


@dataclass
class ReadGuard:
    """The declared files (real path -> name in the recipe) and what the factory did with them."""

    declared: dict[str, str]
    trust_code: bool = False
    opened: list[str] = field(default_factory=list)  # declared names, in order of first open
    loaded: dict[str, str] = field(default_factory=dict)  # declared name -> how it was loaded
    refused: list[str] = field(default_factory=list)  # undeclared paths
    refused_globals: list[str] = field(default_factory=list)
    busy: bool = False

    def on_open(self, path: Any) -> None:
        if isinstance(path, int):
            return  # a descriptor: the file was opened (and judged) already
        real = os.path.realpath(os.fsdecode(os.fspath(path)))
        name = self.declared.get(real)
        if name is not None:
            if name not in self.opened:
                self.opened.append(name)
            return
        if real in _path_entries() or (
            not real.endswith(WEIGHT_SUFFIXES) and (real.startswith(SYSTEM) or _code_file(real) or _importing())
        ):
            return  # a zip archive on sys.path (python311.zip, probed by zipimport), the OS, code, an import
        self.refused.append(real)
        raise PermissionError(f"recipekit: {real} is not declared in source.files; not read")

    def on_find_class(self, module: str, name: str) -> None:
        if self.trust_code:
            return
        from recipekit.sources.checkpoint import FAMILIES, GlobalName

        wanted = GlobalName(module, name)
        if not FAMILIES["state"].allows(wanted):
            self.refused_globals.append(str(wanted))
            import pickle

            raise pickle.UnpicklingError(f"recipekit: {wanted} refused (a state-dict file holds no code)")


def _code_file(real: str) -> bool:
    """A Python code file of the interpreter's path or of an imported package (an editable install
    lives outside sys.path), its metadata, or an architecture text file beside that code:
    what imports, linecache for a warning's source line, importlib.metadata and a model builder read."""
    metadata = ".dist-info" + os.sep in real or ".egg-info" + os.sep in real  # importlib.metadata: versions
    code = metadata or real.endswith(CODE_SUFFIXES + CONFIG_SUFFIXES)
    return code and any(real.startswith(root) for root in _code_roots())


def _importing() -> bool:
    """A module is being imported: what a library reads while it loads (its own settings file, as
    Ultralytics reads ~/.config/Ultralytics/settings.json) is part of importing it, not an input of the
    factory. Weights stay refused even then."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def _path_entries() -> set[str]:
    return {os.path.realpath(p) for p in sys.path if p}


def _code_roots() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *(p for p in sys.path if p)}
    for name, module in list(sys.modules.items()):
        if "." not in name:
            roots.update(os.path.dirname(p) for p in (getattr(module, "__path__", None) or []))
    return tuple(os.path.realpath(r) + os.sep for r in roots)


_ACTIVE: contextvars.ContextVar[ReadGuard | None] = contextvars.ContextVar("recipekit_read_guard", default=None)
_INSTALLED = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" and event != "pickle.find_class":
        return
    guard = _ACTIVE.get()
    if guard is None or guard.busy:
        return
    guard.busy = True
    try:
        if event == "open":
            guard.on_open(args[0])
        else:
            guard.on_find_class(args[0], args[1])
    finally:
        guard.busy = False


def _install() -> None:
    """Audit hooks cannot be removed: one per process, idle unless a guard is active in this context."""
    global _INSTALLED
    if not _INSTALLED:
        sys.addaudithook(_hook)
        _INSTALLED = True


@contextmanager
def guarded(declared: dict[Path, str], trust_code: bool) -> Iterator[ReadGuard]:
    """While inside, this thread's opens and unpickling are judged by a ReadGuard (yielded), and
    torch.load reads declared files through the safe loader."""
    import torch

    _install()
    guard = ReadGuard({os.path.realpath(p): name for p, name in declared.items()}, trust_code)
    original = torch.load
    torch.load = _safe_torch_load(original, guard)
    token = _ACTIVE.set(guard)
    try:
        yield guard
    finally:
        _ACTIVE.reset(token)
        torch.load = original


def _safe_torch_load(original: Any, guard: ReadGuard) -> Any:
    inner = [False]  # inside recipekit's own loader, which calls torch.load itself

    def load(f: Any, map_location: Any = None, pickle_module: Any = None, **kwargs: Any) -> Any:
        from recipekit.sources import checkpoint

        if inner[0]:
            return original(f, map_location=map_location, pickle_module=pickle_module, **kwargs)
        if isinstance(f, (str, os.PathLike)):
            name = guard.declared.get(os.path.realpath(os.fsdecode(os.fspath(f))))
            if name is not None:
                guard.loaded[name] = "torch.load by the factory, read by recipekit's safe loader"
                inner[0] = True
                try:
                    return checkpoint.load(Path(f), "state", guard.trust_code)
                finally:
                    inner[0] = False
        kwargs["weights_only"] = not guard.trust_code or kwargs.get("weights_only", True)
        return original(f, map_location=map_location, **kwargs)  # an open file: torch's weights_only loader

    return load
