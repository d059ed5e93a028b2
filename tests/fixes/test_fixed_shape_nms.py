"""fixed-shape-nms on a real yolo11n-pose nms=True export (field notes case 1)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers.fix_models import run_ort

from recipekit.fixes.base import FixContext
from recipekit.onnx.util import blank_inputs, zero_sized_tensors
from recipekit.sources.ultralytics.fixed_shape_nms import FixedShapeNms

pytestmark = pytest.mark.slow


def test_blank_image_has_zero_sized_tensors_before_and_none_after(pose_nms_onnx, pose_nms_fixed_onnx, pose_recipe):
    before, after = onnx.load(str(pose_nms_onnx)), onnx.load(str(pose_nms_fixed_onnx))
    for value in (0, 114, 255):
        zero = zero_sized_tensors(before, blank_inputs(before, pose_recipe, value))
        ops = {z.op for z in zero} | {c for z in zero for c in z.consumers}
        assert len(zero) > 20 and {"NonZero", "NonMaxSuppression", "GatherND", "Pad"} <= ops, zero
        assert zero_sized_tensors(after, blank_inputs(after, pose_recipe, value)) == []
    assert run_ort(after, blank_inputs(after, pose_recipe))[0].shape == (1, 300, 57)


def test_guarantee_is_measured(pose_nms_onnx, pose_nms_fixed_onnx, pose_recipe):
    fix, ctx = FixedShapeNms(), FixContext(pose_recipe)
    bad = fix.guarantee(onnx.load(str(pose_nms_onnx)), ctx)
    good = fix.guarantee(onnx.load(str(pose_nms_fixed_onnx)), ctx)
    assert not bad.ok and "NonMaxSuppression" in bad.detail
    assert good.ok, good.detail


def test_detections_unchanged_on_bus(pose_nms_onnx, pose_nms_fixed_onnx, bus_tensor):
    (ref,) = run_ort(pose_nms_onnx, {"images": bus_tensor})
    (got,) = run_ort(pose_nms_fixed_onnx, {"images": bus_tensor})
    assert got.shape == ref.shape == (1, 300, 57)
    n = int((ref[0, :, 4] > 0).sum())
    assert 0 < n < 300, "the synthetic model must detect something on bus.jpg"
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
    assert not got[0, n:].any(), "rows past the detections are zero, as ultralytics pads them"


def test_reference_forward_matches_original(pose_recipe, bus_tensor, workdir):
    """The patched NMSModel in PyTorch (what the golden step runs) gives ultralytics' own output."""
    from types import SimpleNamespace

    import torch
    from helpers.fix_models import build_synthetic
    from ultralytics.engine.exporter import NMSModel

    model = build_synthetic(pose_recipe).fuse().eval()
    args = SimpleNamespace(
        format="onnx",
        dynamic=False,
        batch=1,
        conf=0.25,
        iou=0.7,
        max_det=300,
        agnostic_nms=False,
        opset=17,
        quantize=None,
    )
    x = torch.from_numpy(bus_tensor)
    with torch.no_grad():
        ref = NMSModel(model, args)(x)
        with FixedShapeNms().patch(FixContext(pose_recipe)):
            got = NMSModel(model, args)(x)
    assert int((ref[0, :, 4] > 0).sum()) > 0
    torch.testing.assert_close(got, ref)


def test_patch_is_idempotent_and_restores(pose_recipe):
    from ultralytics.engine.exporter import NMSModel

    original = NMSModel.forward
    fix, ctx = FixedShapeNms(), FixContext(pose_recipe)
    with fix.patch(ctx):
        once = NMSModel.forward
        with fix.patch(ctx):
            twice = NMSModel.forward
            assert twice._recipekit_original is once._recipekit_original is original
    assert NMSModel.forward is original


def test_check_not_needed_without_nms(pose_recipe):
    ctx = FixContext(pose_recipe.model_copy(update={"export": pose_recipe.export.model_copy(update={"nms": None})}))
    assert FixedShapeNms().check(ctx).status == "not-needed"
    assert FixedShapeNms().check(FixContext(pose_recipe)).status == "applies"


@pytest.fixture(scope="module")
def dynamic_pair(workdir):
    """Dynamic-batch (max 4) exports without and with the patch: ultralytics pads the batch there too."""
    from helpers.fix_models import export_ultralytics, make_recipe

    recipe = make_recipe("yolo11n-pose.yaml", imgsz=320, opset=17, nms={"score": 0.25}, batch={"max": 4})
    args = {"nms": True, "conf": 0.25, "iou": 0.7, "max_det": 300, "dynamic": True, "batch": 4}
    patch = FixedShapeNms().patch(FixContext(recipe))
    return (
        export_ultralytics(recipe, workdir / "pose-dyn", **args),
        export_ultralytics(recipe, workdir / "pose-dyn-fixed", patch, **args),
        recipe,
    )


@pytest.mark.parametrize("n", [1, 3, 4])
def test_dynamic_batch_no_empty_tensor_same_outputs(dynamic_pair, bus_tensor, n):
    from helpers.fix_models import batch_of

    from recipekit.onnx.preprocess import blank_tensor

    before, after, recipe = dynamic_pair
    x = batch_of(bus_tensor, n)
    x[1:] = blank_tensor((320, 320), recipe.input.preprocess, 0)  # image 0 detects, the others do not
    (ref,), (got,) = run_ort(before, {"images": x}), run_ort(after, {"images": x})
    assert got.shape == ref.shape == (n, 300, 57) and (ref[0, :, 4] > 0).any()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
    assert zero_sized_tensors(onnx.load(str(before)), {"images": x})
    assert zero_sized_tensors(onnx.load(str(after)), {"images": x}) == []


@pytest.mark.parametrize(("model", "widths"), [("yolo11n.yaml", [6]), ("yolo11n-seg.yaml", [38, 80])])
def test_detect_and_segment(workdir, bus_tensor, model, widths):
    """Plain detection has no extras column (a zero-width split would be empty on every input)."""
    from helpers.fix_models import export_ultralytics, make_recipe

    recipe = make_recipe(model, imgsz=320, opset=17, nms={"score": 0.25, "max_det": 100})
    args = {"nms": True, "conf": 0.25, "iou": 0.7, "max_det": 100, "batch": 1}
    stem = model.removesuffix(".yaml")
    before = export_ultralytics(recipe, workdir / stem, **args)
    after = export_ultralytics(recipe, workdir / f"{stem}-fixed", FixedShapeNms().patch(FixContext(recipe)), **args)
    ref, got = run_ort(before, {"images": bus_tensor}), run_ort(after, {"images": bus_tensor})
    assert [o.shape[-1] for o in got] == widths and (ref[0][0, :, 4] > 0).any()
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-4)
    fix, ctx = FixedShapeNms(), FixContext(recipe)
    assert not fix.guarantee(onnx.load(str(before)), ctx).ok
    assert fix.guarantee(onnx.load(str(after)), ctx).ok
