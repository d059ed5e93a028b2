"""The torchvision source on recipes/fasterrcnn-mnv3.yaml: a real export and ONNX Runtime run.

Synthetic weights (seeded, BatchNorm and heads calibrated on bus.jpg/zidane.jpg): bus.jpg is the
traced image, zidane.jpg at two sizes is the second, different image the artifact must agree on.
Torch runs on one thread: on this shared 2-core machine two threads were 15-70x slower.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recipekit.core.errors import RecipeError

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "fasterrcnn-mnv3.yaml"
TOL = {"box_px": 1.0, "score_abs": 0.01, "min_score": 0.3}


def _recipe(*overrides: str):
    from recipekit.recipe.load import load

    return load(RECIPE, list(overrides))


@pytest.fixture(scope="module")
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def built(tmp_path_factory, one_thread):
    """(recipe, source, export dir, ExportInfo, raw model, fixed model bytes, reference forward)."""
    import onnx

    from recipekit.fixes.zero_safe_reshape import ZeroSafeReshape
    from recipekit.sources.torchvision.source import TorchvisionSource

    recipe, out = _recipe(), tmp_path_factory.mktemp("fasterrcnn")
    source = TorchvisionSource(recipe.source)
    info = source.export(recipe, out, [])
    raw = onnx.load(str(out / "model.onnx"))
    fixed = ZeroSafeReshape().apply(raw, None)
    with source.reference(recipe, out, []) as forward:
        yield recipe, out, info, raw, fixed.SerializeToString(), forward


def _ort(model_bytes: bytes):
    from recipekit.onnx.runtime import OrtRunner

    return OrtRunner(Path("model.onnx"), model_bytes)


def _image(recipe, spec: str, hw: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    from recipekit.onnx.preprocess import image_tensor, resolve_sample

    return image_tensor(resolve_sample(spec, ROOT), hw, recipe.input.preprocess) * np.float32(scale)


@pytest.mark.slow
def test_export_manifest_notes(built) -> None:
    recipe, out, info, *_ = built
    assert info.inputs == ["images"] and info.outputs == ["boxes", "scores", "labels"]
    assert {k["group"] for k in info.output_kinds.values()} == {"dets"}
    assert info.notes["weights"] == "synthetic" and info.notes["export_sample"] == "ultralytics:bus.jpg"
    assert info.notes["export_detections"] > 0
    assert json.loads((out / "torchvision.json").read_text())["state_sha256"] == info.notes["state_sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("hw", [(320, 320), (256, 352)])
def test_second_image_matches_pytorch(built, hw) -> None:
    from recipekit.onnx.compare import compare_outputs

    recipe, _, info, _, fixed, forward = built
    x = _image(recipe, "ultralytics:zidane.jpg", hw)
    ref, got = forward(x), _ort(fixed).run_one(x)
    assert len(ref[1]) > 0, "the source model finds objects in zidane.jpg"
    rows = compare_outputs(info.outputs, ref, got, info.output_kinds, TOL)
    assert all(r["passed"] for r in rows), rows


@pytest.mark.slow
def test_blank_image_reshape_error_then_fixed(built) -> None:
    from recipekit.onnx.preprocess import blank_tensor

    recipe, _, _, raw, fixed, forward = built
    for hw in recipe.shapes():
        x = blank_tensor(hw, recipe.input.preprocess, 0)
        assert [len(a) for a in forward(x)] == [0, 0, 0]
        with pytest.raises(Exception, match=r"Reshape.*\{0,364\}.*\{0,-1\}"):
            _ort(raw.SerializeToString()).run_one(x)
        assert [a.shape[0] for a in _ort(fixed).run_one(x)] == [0, 0, 0]


@pytest.mark.slow
def test_pixels_0_255_are_caught(built) -> None:
    """Feeding 0..255 where the graph wants 0..1 changes the predictions: parity fails."""
    from recipekit.onnx.compare import compare_outputs

    recipe, _, info, _, fixed, forward = built
    ref = forward(_image(recipe, "ultralytics:zidane.jpg", (320, 320)))
    got = _ort(fixed).run_one(_image(recipe, "ultralytics:zidane.jpg", (320, 320), scale=255.0))
    rows = compare_outputs(info.outputs, ref, got, info.output_kinds, TOL)
    assert not all(r["passed"] for r in rows)


def test_recipe_rejects_0_255_preprocess(tmp_path) -> None:
    from recipekit.sources.torchvision.source import TorchvisionSource

    recipe = _recipe("input.preprocess.scale=1.0")
    with pytest.raises(RecipeError, match=r"input.preprocess.scale.*0\.\.1"):
        TorchvisionSource(recipe.source).export(recipe, tmp_path, [])


def test_missing_weights_say_how_to_build_synthetic(tmp_path, monkeypatch) -> None:
    from recipekit.sources.torchvision.source import TorchvisionConfig, TorchvisionSource

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for spec, where in (
        ("COCO_V1", "hub/checkpoints/fasterrcnn_mobilenet_v3_large_fpn"),
        ("weights/frcnn.pth", "weights/frcnn.pth"),
    ):
        src = TorchvisionSource(TorchvisionConfig(weights=spec))
        with pytest.raises(RecipeError, match="not on disk") as err:
            src.weight_files(tmp_path)
        assert where in str(err.value) and "source.init=synthetic" in str(err.value)


def test_config_rules() -> None:
    from pydantic import ValidationError

    from recipekit.sources.torchvision.source import TorchvisionConfig

    with pytest.raises(ValidationError, match="init: synthetic"):
        TorchvisionConfig()
    with pytest.raises(ValidationError, match="exclude each other"):
        TorchvisionConfig(init="synthetic", weights="COCO_V1")
    assert TorchvisionConfig(init="synthetic").builder == "fasterrcnn_mobilenet_v3_large_fpn"


@pytest.mark.slow
def test_weights_file_loads(built, tmp_path) -> None:
    """A weights file on disk gives the same model as the synthetic one it was saved from."""
    import torch

    from recipekit.sources.torchvision import export as tx
    from recipekit.sources.torchvision.build import build

    recipe, _, info, *_ = built
    model, _ = build(recipe.source, recipe)
    torch.save(model.state_dict(), tmp_path / "frcnn.pth")
    cfg = recipe.source.model_copy(update={"init": "weights", "weights": str(tmp_path / "frcnn.pth")})
    loaded, notes = build(cfg, recipe)
    assert notes["weights"] == str(tmp_path / "frcnn.pth")
    assert tx.state_digest(loaded) == info.notes["state_sha256"]


def test_recalibrate_bn_generic() -> None:
    import torch
    from torch import nn

    from recipekit.sources.synthetic import recalibrate_bn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5))
    batches = [torch.rand(2, 3, 8, 8) * 5 + 3 for _ in range(3)]
    assert recalibrate_bn(model, batches) == 1
    feats = torch.cat([model[0](b) for b in batches]).detach()
    bn = model[1]
    torch.testing.assert_close(bn.running_mean, feats.mean((0, 2, 3)), atol=1e-4, rtol=1e-4)
    assert not model.training and bn.momentum == 0.1


@pytest.mark.slow
def test_synthetic_rpn_proposals_do_not_tie(one_thread) -> None:
    """Which of two tied proposals survives the RPN's top-n cuts is up to the sort, and PyTorch and ONNX
    Runtime keep different ones (one proposal, and its detection, then differ for no fault of the export).
    Synthetic objectness scores the anchors of one position apart: no two of the best proposals tie."""
    import torch

    from recipekit.sources.torchvision.build import build

    for recipe in (_recipe(), _recipe("source.builder=keypointrcnn_resnet50_fpn", "export.imgsz=160")):
        model, _ = build(recipe.source, recipe)
        x = torch.from_numpy(_image(recipe, "ultralytics:bus.jpg", recipe.export.imgsz))
        with torch.no_grad():
            images, _ = model.transform([x[0]])
            logits, _ = model.rpn.head(list(model.backbone(images.tensors).values()))
        top = torch.cat([t.flatten() for t in logits]).topk(2 * model.rpn.post_nms_top_n()).values
        assert len(torch.unique(top)) == len(top), "tied RPN objectness among the best proposals"
