"""Preprocessing is written once per runtime and the three agree to the bit: Python (recipekit.onnx.pixels,
what the gates feed), a Jetson bundle's check.py (run as the device runs it, with the pixels.py the
bundle ships) and the browser viewer's preprocess.js (in real headless Chromium). Every mode, on three
image shapes (a portrait and a landscape photo, a thin text-line strip), at the size a deployment picks
for each image. Against the libraries users preprocess with, the resamplers are within one level
(1/255): cv2.resize's SIMD rounding and (some sizes) Pillow's pass order differ; nothing else does."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recipekit.onnx import pixels

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
BASE = {"scale": 1 / 255, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "color": "rgb", "layout": "nchw"}
MODES = {
    # name: (preprocess, declared shapes: export size first)
    "letterbox": ({"resize": "letterbox", "pad_value": 114}, [[320, 320]]),
    "letterbox-top-left": ({"resize": "letterbox", "pad": "top-left", "pad_value": 0}, [[320, 320]]),
    "stretch-bgr-nhwc": ({"resize": "stretch", "color": "bgr", "layout": "nhwc", **IMAGENET}, [[96, 160]]),
    "center-crop-0.875": ({"resize": "center-crop", "crop_fraction": 0.875, **IMAGENET}, [[224, 224]]),
    "multiple-32": ({"resize": "multiple", "multiple": 32, **IMAGENET}, [[736, 736]]),
    "fixed-height": (
        {"resize": "fixed-height", "mean": [0.5] * 3, "std": [0.5] * 3, "pad_tensor_value": 0.0},
        [[48, 160], [48, 320], [48, 640]],
    ),
}


def _pre(name: str) -> dict:
    return {**BASE, "pad": "center", "multiple": 32, "crop_fraction": 1.0, "pad_value": 114, **MODES[name][0]}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    """Lossless PNGs (every runtime decodes them to the same bytes): bus.jpg (portrait 1080x810),
    zidane.jpg (landscape 720x1280) and a 45x370 strip cut from bus (a text line)."""
    import cv2

    from recipekit.onnx.preprocess import read_image, resolve_sample

    folder = tmp_path_factory.mktemp("images")
    bus = read_image(resolve_sample("ultralytics:bus.jpg", Path(".")))
    zidane = read_image(resolve_sample("ultralytics:zidane.jpg", Path(".")))
    out = []
    for name, img in (("portrait", bus), ("landscape", zidane), ("strip", bus[600:645, 50:420])):
        out.append(folder / f"{name}.png")
        cv2.imwrite(str(out[-1]), img)
    return out


def _python(path: Path, name: str) -> np.ndarray:
    import cv2

    pre, shapes = _pre(name), MODES[name][1]
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return pixels.tensor(img, pixels.deployed_size(*img.shape[:2], pre, shapes), pre)[0]


def _bundle(folder: Path, name: str) -> Path:
    """A Jetson bundle's checker files (copied as the trt-jetson target copies them) with a bundle.json
    declaring this preprocessing, checksummed."""
    from recipekit.targets.trt import bundle
    from recipekit.targets.trt.jetson import DEFAULT_PLAN, TrtJetsonTarget

    folder.mkdir(parents=True)
    TrtJetsonTarget._copy_checker(folder)
    plan = {"id": DEFAULT_PLAN, "title": DEFAULT_PLAN, "first": [10], "below": [11], "engines": []}
    spec = {
        "preprocess": _pre(name),
        "input_shapes": MODES[name][1],
        "dtype": "float32",
        "plans": [plan],
        "default_plan": DEFAULT_PLAN,
    }
    (folder / "bundle.json").write_text(json.dumps(spec))
    bundle.write_sums(folder)
    return folder


PAGE = """<!doctype html><meta charset="utf-8"><script type="module">
import { deployedSize, pixelsOf, preprocess } from '/preprocess.js';
const job = await (await fetch('/job.json')).json(), out = {};
const load = (src) => new Promise((ok, fail) => {
  const i = new Image(); i.onload = () => ok(i); i.onerror = fail; i.src = src;
});
const b64 = (f) => {
  const u = new Uint8Array(f.buffer);
  let s = '';
  for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
  return btoa(s);
};
try {
  for (const c of job.cases) {
    const img = await load(c.image), size = deployedSize(img.height, img.width, c.pre, c.shapes);
    const x = preprocess(pixelsOf(img), img.width, img.height, size, c.pre);
    out[c.key] = { dims: x.dims, data: b64(x.data) };
  }
  await fetch('/result', { method: 'POST', body: JSON.stringify({ cases: out }) });
} catch (e) { await fetch('/result', { method: 'POST', body: JSON.stringify({ error: String(e && e.stack || e) }) }); }
</script>"""


def _browser(tmp_path: Path, images: list[Path]) -> dict[str, np.ndarray]:
    """Every (mode, image) case through preprocess.js in one headless Chromium page."""
    from importlib import resources

    from recipekit.targets.webgpu.web import find_chromium
    from recipekit.targets.webgpu.web.chromium import Chromium
    from recipekit.targets.webgpu.web.server import LoopbackServer

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE)
    cases = [
        {"key": f"{m}/{p.stem}", "image": f"/{p.name}", "pre": _pre(m), "shapes": MODES[m][1]}
        for m in MODES
        for p in images
    ]
    (site / "job.json").write_text(json.dumps({"cases": cases}))
    for p in images:
        (site / p.name).write_bytes(p.read_bytes())
    asset = Path(str(resources.files("recipekit.targets.webgpu.web") / "assets" / "preprocess.js"))
    with (
        LoopbackServer(files={"/preprocess.js": asset}, mounts={"/": site}) as server,
        Chromium(find_chromium()[0], f"{server.url}/index.html"),
    ):
        got = server.inbox.wait(180)
    assert got is not None and "error" not in got, got
    return {
        k: np.frombuffer(base64.b64decode(v["data"]), np.float32).reshape(v["dims"]) for k, v in got["cases"].items()
    }


def _chromium_missing() -> str | None:
    from recipekit.targets.webgpu.web import find_chromium

    return None if find_chromium()[0] else find_chromium()[1]


@pytest.mark.slow
@pytest.mark.skipif(_chromium_missing() is not None, reason=str(_chromium_missing()))
def test_python_check_py_and_the_browser_agree_bit_for_bit(tmp_path, images):
    browser = _browser(tmp_path, images)
    for name in MODES:
        root = _bundle(tmp_path / f"bundle-{name}", name)
        cmd = [sys.executable, "check.py", "--preprocess", *map(str, images), "--out", str(tmp_path / name)]
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        for path in images:
            want = _python(path, name)
            device = np.load(tmp_path / name / f"{path.stem}.npy")
            page = browser[f"{name}/{path.stem}"]
            assert device.shape == want.shape == page.shape, (name, path.stem, device.shape, page.shape)
            assert device.tobytes() == want.tobytes(), (name, path.stem, "check.py")
            assert page.tobytes() == want.tobytes(), (name, path.stem, np.argwhere(page != want)[:5])


@pytest.mark.parametrize(
    ("name", "image", "size"),
    [
        ("multiple-32", (1080, 810), (736, 544)),  # 736 x 552 -> 736 x 544
        ("multiple-32", (720, 1280), (416, 736)),
        ("multiple-32", (45, 370), (96, 736)),  # a thin line: at least one multiple high
        ("fixed-height", (45, 370), (48, 640)),  # needs 395 px: the 640 bucket
        ("fixed-height", (48, 100), (48, 160)),
        ("fixed-height", (10, 1000), (48, 640)),  # wider than every bucket: squeezed into the widest
        ("letterbox", (1080, 810), (320, 320)),
    ],
)
def test_the_size_a_deployment_picks(name, image, size):
    assert pixels.deployed_size(*image, _pre(name), MODES[name][1]) == size


def test_padding_placement_and_values():
    """Top-left letterbox pads bottom/right only; fixed-height pads the right with pad_tensor_value."""
    img = np.full((100, 50, 3), 200, np.uint8)
    x, geo = pixels.tensor(img, (64, 64), _pre("letterbox-top-left"))
    assert geo["pad"] == [0.0, 0.0] and x[0, :, :, :32].min() > 0.7 and x[0, :, :, 32:].max() == 0.0
    x, geo = pixels.tensor(img, (64, 64), _pre("letterbox"))
    assert geo["pad"] == [16.0, 0.0] and abs(float(x[0, 0, 0, 0]) - 114 / 255) < 1e-6
    x, _ = pixels.tensor(np.full((48, 60, 3), 255, np.uint8), (48, 160), _pre("fixed-height"))
    assert x[0, :, :, :60].min() == 1.0 and x[0, :, :, 60:].max() == 0.0  # (1 - .5) / .5, then 0.0


def test_resamplers_against_the_libraries_users_call(images):
    """One level at most: cv2.resize (INTER_LINEAR; its SIMD lanes round differently) and Pillow's
    BILINEAR (bit-exact where it makes the horizontal pass first)."""
    import cv2
    from PIL import Image

    for path in images:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        for h, w in ((320, 240), (96, 160), (48, 395), (256, 341)):
            ours = pixels.linear(img, h, w).astype(int)
            assert np.abs(ours - cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)).max() <= 1
            ref = np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR)).astype(int)
            assert np.abs(pixels.pil(img, h, w).astype(int) - ref).max() <= 1
    bus = cv2.imread(str(images[0]), cv2.IMREAD_COLOR)
    ref = np.asarray(Image.fromarray(bus).resize((224, 298), Image.BILINEAR))
    assert np.array_equal(pixels.pil(bus, 298, 224), ref)  # Resize(224) of a portrait: exact


def test_top_left_letterbox_is_what_nudenet_feeds_its_detector(images):
    """NudeNet pads the image to a square at the bottom/right with black, then resizes it to 320: the
    top-left letterbox (pad 0) feeds its YOLOv8n the same pixels, but for the image's last column (there
    NudeNet's resize blends image and padding) and one level of cv2's rounding. Its channels arrive in
    BGR order (cvtColor(RGBA2BGR) on a 3-channel image swaps them, then blobFromImage swaps them back),
    so that is what a recipe for it declares: as deployed, not as documented."""
    pytest.importorskip("nudenet")
    import cv2
    from nudenet.nudenet import _read_image

    theirs = _read_image(str(images[0]), 320)[0]
    pre = {**_pre("letterbox-top-left"), "color": "bgr"}
    ours = pixels.tensor(cv2.imread(str(images[0])), (320, 320), pre)[0]
    assert ours.shape == theirs.shape == (1, 3, 320, 320)
    image_cols = 240  # 810 x 320 / 1080
    diff = np.abs(ours - theirs)
    assert diff[..., : image_cols - 1].max() <= 1 / 255 + 1e-6 and diff[..., image_cols:].max() == 0.0
