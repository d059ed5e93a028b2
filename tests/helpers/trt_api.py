"""The names a TensorRT release's Python bindings export, read without GPU libraries.

The bindings wheel (`tensorrt-cu13-bindings`, `tensorrt-cu12-bindings`, `tensorrt-bindings`;
downloaded by scripts/fetch-trt-bindings.sh) holds the real pybind11 module `tensorrt.so`. It links
libnvinfer, libnvinfer_plugin and libnvonnxparser, which only NVIDIA's GPU wheels ship. Loading the
module needs none of their code: every function it imports from them is satisfied by a stub
library compiled here (each stub returns 0, and none is called while the module is imported). The
module then lists its classes, methods, attributes and enum values exactly as users' TensorRT has
them. Loading happens in a subprocess, so the stubs never reach the test process.
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
import sys
import zipfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from helpers.trt_uses import Use

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / ".cache" / "trt-bindings"
PINNED = {
    "8.6.1": "tensorrt_bindings-8.6.1-",
    "10.3.0": "tensorrt_cu12_bindings-10.3.0-",
    "10.13.3.9": "tensorrt_cu13_bindings-10.13.3.9-",
    "10.16.1.11": "tensorrt_cu12_bindings-10.16.1.11-",
    "11.4.0.106": "tensorrt_cu13_bindings-11.4.0.106-",
}
"""The TensorRT releases the code is checked against: one per plan of the trt-jetson bundle (JetPack 5:
8.6, standing for 8.5 too; 6: 10.3; 7.x: 10.13 and 10.16; 11.4.0 standing for JetPack's 11.4.1), which
span the `tensorrt` extra's range too."""

_DUMP = r"""
import importlib.util, inspect, json, sys
spec = importlib.util.spec_from_file_location("tensorrt", sys.argv[1])
trt = importlib.util.module_from_spec(spec); spec.loader.exec_module(trt)
out = {}
for name in dir(trt):
    obj = getattr(trt, name)
    out[name] = sorted(dir(obj)) if inspect.isclass(obj) else []
json.dump(out, sys.stdout)
"""


def wheel(version: str) -> Path:
    found = sorted(WHEELS.glob(PINNED[version] + "*.whl"))
    if not found:
        raise FileNotFoundError(f"no TensorRT {version} bindings wheel in {WHEELS}: run scripts/fetch-trt-bindings.sh")
    return found[0]


def _undefined(so: Path) -> list[str]:
    """Unversioned undefined function symbols that nothing already loaded provides (the TensorRT ones)."""
    out = subprocess.run(["nm", "-D", "--undefined-only", str(so)], capture_output=True, text=True, check=True)
    here = ctypes.CDLL(None)
    names = [line.split()[-1] for line in out.stdout.splitlines() if line.split() and "@" not in line.split()[-1]]
    return sorted(
        n
        for n in names
        if re.fullmatch(r"[A-Za-z_]\w*", n)
        and not hasattr(here, n)
        and not n.startswith(("_ITM", "__gmon", "Py", "_Py"))
    )


def _needed(so: Path) -> list[str]:
    out = subprocess.run(["objdump", "-p", str(so)], capture_output=True, text=True, check=True)
    return [
        line.split()[1]
        for line in out.stdout.splitlines()
        if line.strip().startswith("NEEDED") and line.split()[1].startswith("libnv")
    ]


def _stubs(so: Path, folder: Path) -> None:
    """One stub library providing every TensorRT symbol, under each name the module links."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("a C compiler (cc) is needed to build the stub libraries")
    src = folder / "stub.c"
    src.write_text("".join(f"void *{n}(void) {{ return 0; }}\n" for n in _undefined(so)))
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(folder / "libstub.so"), str(src)], check=True)
    for name in _needed(so):
        shutil.copyfile(folder / "libstub.so", folder / name)


@cache
def exported(version: str, work: str) -> dict[str, list[str]]:
    """module attribute -> its attributes (classes) or [] (functions, constants), for one release."""
    folder = Path(work) / version
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel(version)) as z:
        member = next(n for n in z.namelist() if n.endswith("/tensorrt.so"))
        so = folder / "tensorrt.so"
        so.write_bytes(z.read(member))
    _stubs(so, folder)
    env = {"LD_LIBRARY_PATH": str(folder), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", _DUMP, str(so)], capture_output=True, text=True, env=env, timeout=120, cwd=folder
    )
    if out.returncode != 0:
        raise RuntimeError(f"TensorRT {version} bindings did not load with stubs: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def init_names(version: str) -> set[str]:
    """Names the wheel's tensorrt/__init__.py defines next to the module's (__version__, nptype, ...)."""
    with zipfile.ZipFile(wheel(version)) as z:
        text = z.read(next(n for n in z.namelist() if n.endswith("tensorrt_bindings/__init__.py"))).decode()
    return set(re.findall(r"^(\w+)\s*=", text, re.M)) | set(re.findall(r"^def (\w+)", text, re.M))


def missing(uses: list[Use], version: str, work: str) -> list[str]:
    """The uses that release `version` does not export, as 'file:line: Class.name'."""
    api = exported(version, work)
    module = set(api) | init_names(version)
    anywhere = {n for members in api.values() for n in members}
    out = []
    for u in uses:
        if u.owner == "tensorrt":
            ok = u.name in module
        elif u.owner == "?":
            ok = u.name in anywhere
        else:
            ok = u.owner in api and u.name in api[u.owner]
        if not ok:
            out.append(f"{u.where}: {'tensorrt' if u.owner == 'tensorrt' else u.owner}.{u.name}")
    return out
