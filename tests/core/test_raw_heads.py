"""Raw-head Ultralytics recipes (segmentation, pose) at a rectangular size: ort and webgpu pass.

Each raw head is compared per channel group in its own units (box pixels, class probabilities,
keypoint pixels and visibility, mask coefficients) and the prototypes as mask IoU; the browser gate
uses the recipe's parity tolerances. Real builds through the CLI (synthetic weights, 256x320).
"""

from __future__ import annotations

import pytest
from helpers.common import copy_recipes, manifest

from recipekit.targets.webgpu.web import find_chromium, find_ortweb

pytestmark = pytest.mark.slow

RECIPE = """defaults:
  - _base/yolo
  - _self_
name: {name}
source: {{kind: ultralytics, model: {model}, init: synthetic, seed: 0}}
export: {{opset: 17, imgsz: [256, 320]}}
targets:
  ort: {{}}
  webgpu: {{bundle: jsep}}
gates:  # mask coefficients are raw values: ORT and PyTorch differ by ~1e-3 on synthetic weights
  parity: {{atol: 0.01}}
"""


@pytest.mark.skipif(find_chromium()[0] is None or find_ortweb()[0] is None, reason="no Chromium or onnxruntime-web")
@pytest.mark.parametrize("model, groups", [
    ("yolo11n-seg.yaml", ["box", "class_scores", "mask_coefficients"]),
    ("yolo11n-pose.yaml", ["box", "class_scores", "keypoints"]),
])  # fmt: skip
def test_raw_head_recipe_at_a_rectangular_size_passes_ort_and_webgpu(tmp_path, cli, model, groups):
    recipes = copy_recipes(tmp_path / "recipes")
    name = model.replace(".yaml", "-rect")
    (recipes / f"{name}.yaml").write_text(RECIPE.format(name=name, model=model))
    code, out, err = cli("build", recipes / f"{name}.yaml", "--cache", tmp_path / "cache", "--out", tmp_path / "out")
    assert code == 0, out + err
    for target in ("ort", "webgpu"):
        m = manifest(tmp_path / "out", name, target)
        assert m["status"] == "passed"
        assert [g["name"] for g in m["output_kinds"]["output0"]["groups"]] == groups
        parity = m["gates"]["parity"]["figures"]["outputs"]["output0"]
        assert parity["kind"] == "raw_head" and parity["compared_candidates"] > 0
    web = manifest(tmp_path / "out", name, "webgpu")
    assert web["gates"]["webgpu-browser"]["status"] == "passed"
    if "seg" in model:
        assert web["output_kinds"]["output1"]["kind"] == "prototype_masks"
        assert m["gates"]["parity"]["figures"]["outputs"]["output1"]["decoded_masks"] > 0
