"""The webgpu target: model + manifest + page, an fp16 model with float32 IO, the vendored runtime, and the
viewer page in real headless Chromium drawing detections."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import webgpu_models as models

from recipekit.core.errors import Unavailable
from recipekit.targets import TARGETS
from recipekit.targets.base import TargetContext
from recipekit.targets.webgpu.target import WebGpuConfig, WebGpuTarget
from recipekit.targets.webgpu.web import find_chromium, find_ortweb, pinned_version

needs_npm = pytest.mark.skipif(find_ortweb()[0] is None, reason=find_ortweb()[1])


def build(tmp_path: Path, model: Path, **config) -> tuple[Path, object]:
    rec = models.recipe(64, bundle=config.get("bundle", "jsep"))
    out = tmp_path / "out"
    out.mkdir()
    ctx = TargetContext(
        recipe=rec, state_dir=tmp_path, golden=lambda: None, output_kinds={"output0": models.DETECTIONS}
    )
    return out, WebGpuTarget(WebGpuConfig(**config)).build(model, out, ctx)


def test_registered_with_its_gates():
    cls = TARGETS.get("webgpu")
    assert cls is WebGpuTarget and cls.default_gates == ("parity", "webgpu-lint", "webgpu-browser")
    assert WebGpuConfig().bundle == "webgpu"  # the native WebGPU EP (JSEP is deprecated upstream)
    assert all(f.description for f in WebGpuConfig.model_fields.values())


@needs_npm
@pytest.mark.parametrize("bundle", ["jsep", "webgpu", "jspi", "wasm"])
def test_build_writes_model_manifest_page_and_runtime(tmp_path, bundle):
    src = models.constant_detections(tmp_path / "src.onnx")
    before = src.read_bytes()
    out, result = build(tmp_path, src, bundle=bundle)
    assert src.read_bytes() == before and result.artifact == "model.onnx"
    manifest = json.loads((out / "webgpu.json").read_text())
    assert manifest == {k: v for k, v in result.manifest.items() if k != "manifest_file"}
    rt = manifest["onnxruntime_web"]
    assert rt["version"] == pinned_version() and rt["bundle"] == bundle
    imports = {"jsep": "onnxruntime-web", "webgpu": "onnxruntime-web/webgpu", "jspi": "onnxruntime-web/jspi"}
    assert rt["import"] == {**imports, "wasm": "onnxruntime-web/wasm"}[bundle]
    assert ("deprecated" in rt) == (bundle == "jsep")
    assert manifest["execution_providers"] == (["wasm"] if bundle == "wasm" else ["webgpu", "wasm"])
    assert all((out / f).is_file() for f in rt["files"]) and (out / rt["base"] / rt["entry"]).is_file()
    assert manifest["inputs"] == [{"name": "images", "dtype": "float32", "shape": [1, 3, 64, 64]}]
    assert manifest["outputs"][0]["kind"] == models.DETECTIONS and manifest["outputs"][0]["shape"] == [1, 3, 6]
    assert manifest["preprocess"]["scale"] == pytest.approx(1 / 255) and manifest["sample"] == "sample.jpg"
    assert {"index.html", "viewer.js", "model.onnx", "sample.jpg"} <= {p.name for p in out.iterdir()}


def test_cdn_runtime_needs_no_npm_install(tmp_path):
    out, result = build(tmp_path, models.constant_detections(tmp_path / "src.onnx"), vendor_runtime=False)
    rt = result.manifest["onnxruntime_web"]
    assert rt["base"] == f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{pinned_version()}/dist/"
    assert not (out / "ort").exists()


def test_missing_npm_package_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("RECIPEKIT_WEB_DIR", str(tmp_path))
    (tmp_path / "package.json").write_text('{"dependencies": {"onnxruntime-web": "1.30.0"}}')
    with pytest.raises(Unavailable, match="onnxruntime-web 1.30.0 is not installed"):
        build(tmp_path, models.constant_detections(tmp_path / "src.onnx"))


@needs_npm
def test_fp16_keeps_float32_io_and_runs(tmp_path):
    from recipekit.onnx.runtime import OrtRunner
    from recipekit.precision.fp16 import convert

    src = models.nonzero_pad(tmp_path / "src.onnx", (64, 64))
    half = tmp_path / "half.onnx"
    convert(src, half)  # the precision step's output is what the target packages
    out, result = build(tmp_path, half)
    model = onnx.load(str(out / "model.onnx"))
    assert result.manifest["fp16"] and result.manifest["inputs"][0]["dtype"] == "float32"
    assert result.manifest["outputs"][0]["dtype"] == "float32"
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    x = np.random.default_rng(0).random((1, 3, 64, 64)).astype(np.float32)
    assert OrtRunner(out / "model.onnx").run_one(x)[0].shape == OrtRunner(src).run_one(x)[0].shape


@needs_npm
@pytest.mark.skipif(find_chromium()[0] is None, reason=find_chromium()[1])
@pytest.mark.slow
def test_viewer_page_draws_the_detections(tmp_path):
    """What a person sees: open index.html, the sample is run and two boxes are drawn on it."""
    from recipekit.targets.webgpu.web.chromium import Chromium
    from recipekit.targets.webgpu.web.server import LoopbackServer

    out, _ = build(tmp_path, models.constant_detections(tmp_path / "src.onnx"))
    with (
        LoopbackServer(mounts={"/": out, "/ort/": out / "ort"}) as server,
        Chromium(find_chromium()[0], f"{server.url}/index.html?report"),
    ):
        got = server.inbox.wait(120)
    assert got is not None and "error" not in got, got
    assert got["detections"] == 2 and got["ep"] == "webgpu"
    png = base64.b64decode(got["png"].split(",", 1)[1])
    (tmp_path / "viewer.png").write_bytes(png)
    import cv2

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    green = (img[..., 1] > 200) & (img[..., 0] < 150) & (img[..., 2] < 150)
    assert green.sum() > 500  # box outlines drawn in #00e676


@needs_npm
def test_gates_read_the_bundle_the_target_built_for(tmp_path):
    """The gates take the bundle from the built artifact's manifest, as the build engine passes it."""
    from recipekit.gates.base import GateContext
    from recipekit.targets.webgpu.lint import WebGpuLint, declared_bundle

    out, result = build(tmp_path, models.nonzero_pad(tmp_path / "src.onnx", (64, 64)), bundle="webgpu")
    rec = models.recipe(64)  # the recipe says jsep: the artifact's manifest wins
    ctx = GateContext(
        recipe=rec,
        target="webgpu",
        artifact_dir=out,
        artifact=result.artifact,
        onnx_path=tmp_path / "src.onnx",
        runner=lambda: None,
        golden=lambda: None,
        target_manifest=result.manifest,
    )
    assert declared_bundle(ctx) == "webgpu"
    lint = WebGpuLint().check(ctx)
    assert lint.figures["bundle"] == "webgpu" and lint.status == "passed"


def _png_samples(folder: Path) -> list[Path]:
    """bus.jpg (portrait) and zidane.jpg (landscape) as lossless PNGs: the browser's JPEG decoder is not cv2's."""
    import cv2

    from recipekit.onnx.preprocess import read_image, resolve_sample

    out = []
    for name in ("bus", "zidane"):
        path = folder / f"{name}.png"
        cv2.imwrite(str(path), read_image(resolve_sample(f"ultralytics:{name}.jpg", Path("."))))
        out.append(path)
    return out


@needs_npm
@pytest.mark.skipif(find_chromium()[0] is None, reason=find_chromium()[1])
@pytest.mark.slow
@pytest.mark.parametrize(
    ("resize", "hw"), [("center-crop", (64, 64)), ("center-crop", (48, 80)), ("letterbox", (48, 80))]
)
def test_viewer_feeds_the_tensor_recipekit_makes(tmp_path, resize, hw):
    """The page's preprocessing is recipekit.preprocess's: a classifier's resize + centre crop (Pillow's
    antialiased bilinear, as Ultralytics' classify_transforms) to the last bit; letterbox within one grey
    level (cv2's INTER_LINEAR rounds in SIMD lanes whose width depends on the CPU). Portrait and landscape."""
    from recipekit.onnx.preprocess import image_tensor
    from recipekit.recipe.schema import Preprocess
    from recipekit.targets.webgpu.web.chromium import Chromium
    from recipekit.targets.webgpu.web.server import LoopbackServer

    samples = _png_samples(tmp_path)
    rec = models.recipe(hw, samples=(str(samples[0]),))
    rec = rec.model_copy(update={"input": rec.input.model_copy(update={"preprocess": Preprocess(resize=resize)})})
    out = tmp_path / "out"
    out.mkdir()
    ctx = TargetContext(recipe=rec, state_dir=tmp_path, golden=lambda: None, output_kinds={})
    WebGpuTarget(WebGpuConfig()).build(models.constant_detections(tmp_path / "src.onnx", hw), out, ctx)
    assert json.loads((out / "webgpu.json").read_text())["preprocess"]["resize"] == resize
    for sample in samples:
        (out / "sample.png").write_bytes(sample.read_bytes())  # the page runs the manifest's sample
        with (
            LoopbackServer(mounts={"/": out, "/ort/": out / "ort"}) as server,
            Chromium(find_chromium()[0], f"{server.url}/index.html?report&input"),
        ):
            got = server.inbox.wait(120)
        assert got is not None and "error" not in got, got
        want = image_tensor(sample, hw, rec.input.preprocess)
        page = np.asarray(got["input"], np.float32).reshape(want.shape)
        tol = 1e-6 if resize == "center-crop" else 1 / 255 + 1e-6
        assert np.abs(page - want).max() < tol, (sample.name, np.argwhere(np.abs(page - want) >= tol)[:5])


def test_page_files_are_in_the_compile_key(tmp_path, monkeypatch):
    """The page is part of the artifact (its preprocessing is what the model is fed): another viewer.js
    re-keys the compile step instead of leaving a cached bundle with the old page."""
    from importlib import resources

    from recipekit.targets.webgpu import target as webgpu_target

    before = WebGpuTarget.environment_key()
    assets = tmp_path / "web" / "assets"
    assets.mkdir(parents=True)
    real, files = resources.files("recipekit.targets.webgpu.web") / "assets", resources.files
    for name in webgpu_target.PAGE_FILES:
        (assets / name).write_bytes((real / name).read_bytes())
    monkeypatch.setattr(resources, "files", lambda pkg: assets.parent if pkg.endswith("webgpu.web") else files(pkg))
    assert WebGpuTarget.environment_key() == before
    (assets / "viewer.js").write_text((real / "viewer.js").read_text() + "\n// another page\n")
    assert WebGpuTarget.environment_key()["page_sha256"] != before["page_sha256"]
