"""mmpose source: RTMO-s exported by mmdeploy, run by ONNX Runtime, against mmpose's ordinary mode.

The exports are real (mmdeploy torch2onnx on synthetic weights at 640x640, RTMO's own size) and
shared by the slow tests through a module fixture; both exports calibrate their synthetic weights at
640x640, so their checkpoints must be identical (seeded), and both must match the reference: the
(W, H) swap that rtmo-rect-priors fixes cancels out on a square input.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recipekit.core.errors import RecipeError
from recipekit.fixes.base import FixContext
from recipekit.onnx.compare import compare_outputs
from recipekit.onnx.preprocess import image_tensor, resolve_sample
from recipekit.onnx.runtime import OrtRunner
from recipekit.recipe.load import load
from recipekit.sources.mmpose.mmcv_compat import install as install_mmcv_compat
from recipekit.sources.mmpose.rtmo_rect_priors import RtmoRectPriors
from recipekit.sources.mmpose.source import MmposeConfig, MmposeSource

install_mmcv_compat()  # mmcv-lite: lets mmpose.models import (see recipekit/sources/mmpose/mmcv_compat.py)
import mmpose  # noqa: E402,F401 - the mmpose extra is installed in CI (scripts/install-mmpose.sh)

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TOL = {"box_px": 1.0, "keypoints_px": 2.0, "score_abs": 0.01, "min_score": 0.12}
SAMPLES = ("ultralytics:bus.jpg", "ultralytics:zidane.jpg")


def rtmo_recipe(hw: tuple[int, int] = (640, 640), *overrides: str) -> Any:
    return load(RECIPES / "rtmo-640x640.yaml", [f"export.imgsz=[{hw[0]},{hw[1]}]", *overrides])


def export(recipe: Any, out: Path, fixed: bool) -> tuple[Any, float]:
    """A real export (rtmo-rect-priors entered or not); returns ExportInfo and seconds taken."""
    out.mkdir(parents=True, exist_ok=True)
    patches = [RtmoRectPriors().patch(FixContext(recipe))] if fixed else []
    start = time.perf_counter()
    info = MmposeSource(recipe.source).export(recipe, out, patches)
    return info, time.perf_counter() - start


def inputs(recipe: Any) -> list[np.ndarray]:
    hw, pre = tuple(recipe.export.imgsz), recipe.input.preprocess
    return [image_tensor(resolve_sample(s, RECIPES), hw, pre) for s in SAMPLES]


def parity_rows(recipe: Any, out: Path, info: Any) -> list[dict[str, Any]]:
    """ORT against the reference on both sample images: one detection-group row per image."""
    runner = OrtRunner(out / "model.onnx")
    rows = []
    with MmposeSource(recipe.source).reference(recipe, out, []) as forward:
        for x in inputs(recipe):
            rows += compare_outputs(info.outputs, forward(x), runner.run_one(x), info.output_kinds, TOL)
    return rows


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    recipe, root = rtmo_recipe(), tmp_path_factory.mktemp("rtmo640")
    out = {}
    for name, fixed in (("fixed", True), ("plain", False)):
        info, seconds = export(recipe, root / name, fixed)
        out[name] = {"dir": root / name, "info": info, "seconds": seconds}
        print(f"export 640x640 {name}: {seconds:.1f} s")
    return {"recipe": recipe, **out}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fixed", "plain"])
def test_square_export_matches_reference_with_or_without_fix(exports: dict[str, Any], name: str) -> None:
    recipe, run = exports["recipe"], exports[name]
    rows = parity_rows(recipe, run["dir"], run["info"])
    assert all(r["passed"] for r in rows), [r.get("reason") for r in rows]
    assert all(r["matched"] >= 1 for r in rows), "synthetic weights must detect something on each sample"
    assert run["info"].outputs == ["dets", "keypoints"] and run["info"].inputs == ["input"]


@pytest.mark.slow
def test_graph_io_and_dynamic_batch(exports: dict[str, Any]) -> None:
    """Input 1x3x640x640 with a symbolic batch; a batch of two equals two single runs."""
    import onnx

    model = onnx.load(str(exports["fixed"]["dir"] / "model.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 640, 640]
    assert model.opset_import[0].version == 17
    runner, xs, kinds = (
        OrtRunner(exports["fixed"]["dir"] / "model.onnx"),
        inputs(exports["recipe"]),
        exports["fixed"]["info"].output_kinds,
    )
    dets2, kpts2 = runner.run_one(np.concatenate(xs))
    for i, x in enumerate(xs):
        (row,) = compare_outputs(
            ["dets", "keypoints"], runner.run_one(x), [dets2[i : i + 1], kpts2[i : i + 1]], kinds, TOL
        )
        assert row["passed"], row.get("reason")


@pytest.mark.slow
def test_synthetic_weights_are_seeded_and_declared(exports: dict[str, Any]) -> None:
    import torch

    a, b = (
        torch.load(exports[n]["dir"] / "synthetic.pth", weights_only=False)["state_dict"] for n in ("fixed", "plain")
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    notes = exports["fixed"]["info"].notes
    assert notes["init"] == "synthetic" and "NOT a trained model" in notes["weights"] and notes["seed"] == 0


def test_missing_weights_file_names_the_file_and_the_synthetic_option(tmp_path: Path) -> None:
    source = MmposeSource(MmposeConfig(kind="mmpose", weights="rtmo-s.pth", init="weights"))
    with pytest.raises(RecipeError) as err:
        source.weight_files(tmp_path)
    assert err.value.key_path == "source.weights"
    assert str(tmp_path / "rtmo-s.pth") in str(err.value) and "source.init: synthetic" in str(err.value)


def test_mmpose_model_name_is_looked_up_never_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    source = MmposeSource(MmposeConfig(kind="mmpose", weights="rtmo-s_8xb32-600e_coco-640x640"))
    with pytest.raises(RecipeError, match="download.openmmlab.com.*source.init: synthetic"):
        source.weight_files(tmp_path)
    ckpt = tmp_path / "hub" / "checkpoints" / "rtmo-s_8xb32-600e_coco-640x640-8db55a59_20231211.pth"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    assert source.weight_files(tmp_path) == [ckpt]


def test_existing_weights_file_is_the_weight_file(tmp_path: Path) -> None:
    (tmp_path / "w.pth").write_bytes(b"x")
    assert MmposeSource(MmposeConfig(kind="mmpose", weights="w.pth")).weight_files(tmp_path) == [tmp_path / "w.pth"]
    assert MmposeSource(MmposeConfig(kind="mmpose", init="synthetic")).weight_files(tmp_path) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["source.init=weights"], "init: weights needs `weights`"),
        (["source.exporter=torch"], "source.exporter"),
        (["source.colour=bgr"], "source.colour"),
    ],
)
def test_config_errors_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        rtmo_recipe((640, 640), *overrides)


def test_dynamic_hw_is_rejected_before_any_work(tmp_path: Path) -> None:
    recipe = rtmo_recipe((640, 640), "export.dynamic.hw=true")
    with pytest.raises(RecipeError, match="export.dynamic.hw"):
        MmposeSource(recipe.source).export(recipe, tmp_path, [])
    assert not list(tmp_path.iterdir())


def test_mmcv_lite_compat_layer() -> None:
    """mmcv.ops imports on mmcv-lite; nms works (torchvision); other compiled ops fail loudly."""
    import torch

    from recipekit.sources.mmpose.mmcv_compat import install

    install()
    install()  # idempotent
    import mmcv.ops
    import pkg_resources

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    dets, keep = mmcv.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]
    with pytest.raises(RuntimeError, match="roi_align.*mmcv-lite"):
        mmcv.ops.roi_align(torch.zeros(1, 1, 4, 4), torch.zeros(1, 5), (2, 2))
    assert pkg_resources.get_distribution("mmpose").version == "1.3.2"
