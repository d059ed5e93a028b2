"""webgpu: a folder a web server can serve: the ONNX in the recipe's export.precision, a manifest naming
the onnxruntime-web version and bundle, tensors and preprocessing, and a page that draws detections."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, model_validator

from recipekit.core.plugin import Strict
from recipekit.targets.base import BuildResult, Target, TargetContext
from recipekit.targets.webgpu.bundles import DEFAULT, BundleName

PAGE_FILES = ("index.html", "viewer.js", "preprocess.js")
MANIFEST = "webgpu.json"


class WebGpuConfig(Strict):
    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data: Any) -> Any:
        if isinstance(data, dict) and "fp16" in data:
            raise ValueError("fp16 was removed: set export.precision: fp16 (one precision step shared by every target)")
        return data

    bundle: BundleName = Field(
        DEFAULT,
        description="onnxruntime-web bundle: 'webgpu' is `onnxruntime-web/webgpu` (the native C++ WebGPU "
        "execution provider, asyncify build; the default); 'jspi' the same EP built for JSPI (browsers with "
        "WebAssembly.Suspending); 'jsep' the `onnxruntime-web` import (JS WebGPU kernels: deprecated upstream, "
        "rejects zero-sized tensors); 'wasm' `onnxruntime-web/wasm` (CPU only, the baseline)",
    )
    vendor_runtime: bool = Field(
        True,
        description="copy the pinned onnxruntime-web files the bundle needs into the artifact (the page works "
        "offline); false: the page loads the same version from the jsDelivr CDN",
    )


class WebGpuTarget(Target):
    """The browser deployment. Gates: parity (ORT CPU), webgpu-lint (static), webgpu-browser (Chromium)."""

    name: ClassVar[str] = "webgpu"
    version: ClassVar[str] = "2"
    Config = WebGpuConfig
    default_gates: ClassVar[tuple[str, ...]] = ("parity", "webgpu-lint", "webgpu-browser")
    reads_samples: ClassVar[bool] = True  # the page shows the first sample image

    @classmethod
    def refuses_precision(cls, recipe: Any) -> str | None:
        """INT8 QDQ needs QuantizeLinear on the GPU: the pinned JSEP kernel table (ops.json) has none,
        and the C++ WebGPU bundle's table is not known here, so no bundle is claimed to support it."""
        if recipe.export.precision != "int8":
            return None
        from recipekit.targets.webgpu.graph import kernel_table

        ops = kernel_table().domains.get("", {})
        if "QuantizeLinear" in ops and "DequantizeLinear" in ops:
            return None
        return (
            "int8 QDQ is not supported by onnxruntime-web's WebGPU kernels here (no QuantizeLinear kernel in "
            "the pinned JSEP table); use fp16 for webgpu, or build int8 for ort/trt only"
        )

    @classmethod
    def environment_key(cls) -> dict[str, str | None]:
        """Part of the compile step's key: a new onnxruntime-web pin or lockfile, or another page (its
        preprocessing is the viewer's), rebuilds the artifact."""
        import hashlib

        from recipekit.targets.webgpu.web.ortweb import pinned_version, web_dir

        lock = web_dir() / "package-lock.json"
        digest = hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None
        assets = resources.files("recipekit.targets.webgpu.web") / "assets"
        page = hashlib.sha256(b"".join(hashlib.sha256((assets / n).read_bytes()).digest() for n in PAGE_FILES))
        return {"onnxruntime_web": pinned_version(), "package_lock_sha256": digest, "page_sha256": page.hexdigest()}

    def build(self, onnx_path: Path, out: Path, ctx: TargetContext) -> BuildResult:
        import onnx

        from recipekit.targets.webgpu.package import page_manifest

        version, runtime = self._runtime(out)
        from recipekit.onnx import external

        model = onnx.load(str(onnx_path))
        path = out / "model.onnx"
        external.save(model, path, external=external.has_external(onnx_path))  # weights beside it stay beside it
        assets = resources.files("recipekit.targets.webgpu.web") / "assets"
        for name in PAGE_FILES:
            (out / name).write_bytes((assets / name).read_bytes())
        manifest = page_manifest(
            model, path, ctx.recipe, self.config, version, runtime, ctx.output_kinds, self._sample(out, ctx)
        )
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
        return BuildResult(artifact=path.name, manifest={**manifest, "manifest_file": MANIFEST})

    def _runtime(self, out: Path) -> tuple[str, dict]:
        """The pinned version and where the page loads it from (vendored files or the CDN)."""
        from recipekit.core.errors import Unavailable
        from recipekit.targets.webgpu.web.ortweb import BUNDLES, CDN, find_ortweb, pinned_version

        entry = BUNDLES[self.config.bundle][0]
        if not self.config.vendor_runtime:
            version = pinned_version()
            if version is None:
                raise Unavailable("no onnxruntime-web pin found (web/package.json): cannot name the runtime version")
            return version, {"entry": entry, "base": CDN.format(version=version), "files": []}
        ortweb, why = find_ortweb()
        if ortweb is None:
            raise Unavailable(f"cannot vendor onnxruntime-web into the artifact: {why}")
        (out / "ort").mkdir()
        files = ortweb.files(self.config.bundle)
        for name in files:
            shutil.copyfile(ortweb.dist / name, out / "ort" / name)
        return ortweb.version, {
            "entry": entry,
            "base": "ort/",
            "files": [f"ort/{f}" for f in files],
            "cdn": CDN.format(version=ortweb.version),
        }

    def _sample(self, out: Path, ctx: TargetContext) -> str | None:
        """The recipe's first sample image, copied so the page shows detections on open."""
        from recipekit.core.errors import RecipeKitError
        from recipekit.onnx.preprocess import resolve_sample

        samples = ctx.recipe.input.samples
        if not samples:
            return None
        try:
            src = resolve_sample(samples[0], Path(ctx.recipe.base_dir or "."))
        except RecipeKitError:
            return None
        name = "sample" + src.suffix.lower()
        shutil.copyfile(src, out / name)
        return name
