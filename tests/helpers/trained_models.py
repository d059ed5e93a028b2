"""The trained-model recipes in recipes/ (models installed PyPI packages ship; pyproject's `fixtures`
extra), as the tests build them: each test builds the recipe a user would, with overrides where it
needs something else. The recipes declare what the models output and how their pixels are prepared:

- nudenet-320n: nudenet 3.4.2's `320n.onnx`, an Ultralytics YOLOv8n detector export (a raw head
  (B, 4 + 18, A)), fed as NudeNet feeds it (top-left letterbox, BGR), judged on photos other packages
  ship, at 320 and 640.
- ppocr-det / ppocr-rec / ppocr-cls: PaddleOCR's text detector (a DB probability map), CTC recognizer
  (sequences) and direction classifier (class scores) as rapidocr-onnxruntime 1.4.4 ships them.
"""

from __future__ import annotations

from helpers.common import RECIPES

NUDENET = RECIPES / "nudenet-320n.yaml"
PLAIN = "export.quantization.goal=null"
"""Plain INT8 of a recipe that declares a goal: no search, no sensitivity table."""
OCR = {which: RECIPES / f"ppocr-{which}.yaml" for which in ("det", "rec", "cls")}
OCR_OUTPUT = {"det": "sigmoid_0.tmp_0", "rec": "softmax_11.tmp_0", "cls": "save_infer_model/scale_0.tmp_1"}
