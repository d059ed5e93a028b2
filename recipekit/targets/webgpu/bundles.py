"""The onnxruntime-web bundles the webgpu target can ship, and what each one is.

onnxruntime-web publishes one npm package with several builds ("bundles"), each an import path:

- `webgpu`: `onnxruntime-web/webgpu`, the native C++ WebGPU execution provider (asyncify build): the
  default, and what upstream makes the default import after JSEP is removed.
- `jspi`: `onnxruntime-web/jspi`, the same C++ EP built for JavaScript Promise Integration (smaller
  wasm, no asyncify); only where the browser has `WebAssembly.Suspending` (Chromium 137+).
- `jsep`: `onnxruntime-web`, the JavaScript WebGPU kernels (JSEP), deprecated upstream since 1.29.
- `wasm`: `onnxruntime-web/wasm`, the CPU baseline: no WebGPU at all.

Which defects each bundle has is measured, one kernel at a time, in headless Chromium (README, "WebGPU");
each fix names the bundles whose defect it works around (`OnnxFix.bundles`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BundleName = Literal["webgpu", "jspi", "jsep", "wasm"]
DEFAULT: BundleName = "webgpu"


@dataclass(frozen=True)
class Bundle:
    name: str
    import_path: str  # what a page imports (npm export path)
    entry: str  # the module in dist/
    glue: str  # the wasm glue it loads (dist/<glue>.mjs + .wasm)
    eps: tuple[str, ...]  # execution providers a page tries, in order
    kernels: str  # which kernel table (ops.json) describes its WebGPU EP: "jsep", "native" or "" (none)
    deprecated: str = ""  # why, when upstream has deprecated it
    needs_jspi: bool = False  # the browser must have WebAssembly.Suspending


BUNDLES: dict[str, Bundle] = {
    b.name: b
    for b in (
        Bundle("webgpu", "onnxruntime-web/webgpu", "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify",
               ("webgpu", "wasm"), "native"),
        Bundle("jspi", "onnxruntime-web/jspi", "ort.jspi.min.mjs", "ort-wasm-simd-threaded.jspi",
               ("webgpu", "wasm"), "native", needs_jspi=True),
        Bundle("jsep", "onnxruntime-web", "ort.min.mjs", "ort-wasm-simd-threaded.jsep", ("webgpu", "wasm"), "jsep",
               deprecated="JSEP is deprecated upstream (onnxruntime-web 1.29) in favour of the native WebGPU EP "
               "(bundle: webgpu) and will be removed"),
        Bundle("wasm", "onnxruntime-web/wasm", "ort.wasm.min.mjs", "ort-wasm-simd-threaded", ("wasm",), ""),
    )
}  # fmt: skip


def bundle(name: str) -> Bundle:
    return BUNDLES[name]


def describe() -> str:
    """One line per bundle, for config descriptions."""
    return "; ".join(
        f"'{b.name}': `{b.import_path}`" + (" (deprecated)" if b.deprecated else "") for b in BUNDLES.values()
    )
