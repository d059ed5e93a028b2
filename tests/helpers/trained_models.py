"""Recipes for trained models that installed PyPI packages ship (pyproject's `fixtures` extra), and the
images they are judged on: photos other packages ship, plus text lines rendered here for the OCR models.

- nudenet 3.4.2: `320n.onnx`, an Ultralytics YOLOv8n detector export (raw head (B, 4 + 18, A), 18
  body-part classes). NudeNet pads its input bottom/right; recipekit's letterbox centres it (the
  recipe declares what it runs, so both sides of every gate see the same pixels).
- rapidocr-onnxruntime 1.4.4: PaddleOCR's text detector (DB probability map (B, 1, H, W)), its
  direction classifier ((B, 2) probabilities) and CTC recognizer ((B, T, 6625) probabilities).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, rel: str) -> Path:
    """A file an installed package ships (found without importing the package)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} is not installed (scripts/setup.sh)"
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    assert path.is_file(), path
    return path


PHOTOS = [
    "ultralytics:bus.jpg",
    "ultralytics:zidane.jpg",
    "matplotlib:mpl-data/sample_data/grace_hopper.jpg",
    "skimage:data/astronaut.png",
    "skimage:data/camera.png",
    "skimage:data/color.png",
]
"""Photos with people and faces (what NudeNet's classes are about), from three installed packages."""


def nudenet(folder: Path, samples: list[str] | None = None, shapes: str = "[[640, 640]]") -> Path:
    """NudeNet's YOLOv8n on ort, judged at 320 and 640 (17 reference detections at 0.25 over the photos)."""
    model = package_file("nudenet", "320n.onnx")
    listed = ", ".join(f'"{s}"' for s in (samples or PHOTOS))
    path = folder / "nudenet.yaml"
    path.write_text(
        f"""name: nudenet
source:
  kind: onnx
  path: {model}
  output_kinds:
    output0:
      kind: raw_head
      groups: [{{role: box, start: 0, stop: 4, format: cxcywh}}, {{role: class_scores, start: 4, stop: 22}}]
input:
  name: images
  preprocess: {{resize: letterbox, scale: 0.00392156862745098, mean: [0, 0, 0], std: [1, 1, 1], color: rgb}}
  samples: [{listed}]
  shapes: {shapes}
export: {{opset: 17, imgsz: [320, 320]}}
targets: {{ort: {{}}}}
gates: {{parity: {{}}, empty-input: {{}}}}
"""
    )
    return path


OCR = "rapidocr_onnxruntime"
LINES = '["matplotlib:mpl-data/sample_data/logo2.png", line0.png, line1.png]'
"""matplotlib's logo (the word 'matplotlib') and two rendered lines: what a recognizer reads."""
PADDLE = "{resize: %s, scale: 0.00392156862745098, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], color: bgr%s}"


def text_images(folder: Path) -> None:
    """Two rendered text lines (48 x 320) and a rendered page (320 x 320) of black text on white."""
    import cv2
    import numpy as np

    for k, text in enumerate(["Hello World 2024", "ONNX Runtime WebGPU"]):
        img = np.full((48, 320, 3), 255, np.uint8)
        cv2.putText(img, text, (6, 34), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.imwrite(str(folder / f"line{k}.png"), img)
    page = np.full((320, 320, 3), 255, np.uint8)
    for k, text in enumerate(["Hello World", "INT8 2024", "recipekit", "WebGPU"]):
        cv2.putText(page, text, (10, 50 + 70 * k), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.imwrite(str(folder / "page.png"), page)


def ocr(folder: Path, which: str, kind: str | None = None) -> Path:
    """One of PaddleOCR's three models as rapidocr ships them, with its output declared (or `kind`)."""
    files = {
        "det": ("ch_PP-OCRv4_det_infer.onnx", "sigmoid_0.tmp_0", "{kind: dense_map, threshold: 0.3}", 12),
        "rec": ("ch_PP-OCRv4_rec_infer.onnx", "softmax_11.tmp_0", "{kind: sequence, blank: 0}", 12),
        "cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", "save_infer_model/scale_0.tmp_1", "{kind: class_scores}", 11),
    }
    name, output, declared, opset = files[which]
    size, pre, samples = {
        "det": ("[320, 320]", PADDLE % ("letterbox", ", pad_value: 255"), '[page.png, "skimage:data/page.png"]'),
        "rec": (
            "[48, 320]",
            PADDLE % ("stretch", ""),
            '["matplotlib:mpl-data/sample_data/logo2.png", line0.png, line1.png]',
        ),
        "cls": (
            "[48, 192]",
            PADDLE % ("stretch", ""),
            '["matplotlib:mpl-data/sample_data/logo2.png", line0.png, line1.png]',
        ),
    }[which]
    path = folder / f"ocr-{which}.yaml"
    path.write_text(
        f"""name: ocr-{which}
source:
  kind: onnx
  path: {package_file(OCR, "models/" + name)}
  output_kinds: {{"{output}": {kind or declared}}}
input:
  preprocess: {pre}
  samples: {samples}
export: {{opset: {opset}, imgsz: {size}}}
targets: {{ort: {{}}}}
gates: {{parity: {{}}, empty-input: {{}}}}
"""
    )
    return path
