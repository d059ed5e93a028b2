"""rtmo-rect-priors (field notes, case 4): RTMO-s exported at H=640, W=1280 with and without the fix.

Without it the deploy graph's priors and cached positional encoding describe a (W, H) grid, so the
ONNX Runtime detections do not match mmpose's ordinary-mode reference at all; with it they match
within the recipe's tolerances, and the fix's guarantee reads the difference off the graph.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import onnx
import pytest

from recipekit.fixes import FIXES
from recipekit.fixes.base import FixContext
from recipekit.onnx.compare import compare_outputs
from recipekit.onnx.preprocess import image_tensor, resolve_sample
from recipekit.onnx.runtime import OrtRunner
from recipekit.recipe.load import load
from recipekit.sources.mmpose.mmcv_compat import install as install_mmcv_compat
from recipekit.sources.mmpose.rtmo_rect_priors import RtmoRectPriors
from recipekit.sources.mmpose.source import MmposeSource

install_mmcv_compat()  # mmcv-lite: lets mmpose.models import (see recipekit/sources/mmpose/mmcv_compat.py)
import mmpose  # noqa: E402,F401 - the mmpose extra is installed in CI (scripts/install-mmpose.sh)

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TOL = {"box_px": 1.0, "keypoints_px": 2.0, "score_abs": 0.01, "min_score": 0.12}
SAMPLES = ("ultralytics:bus.jpg", "ultralytics:zidane.jpg")


@pytest.fixture(scope="module")
def recipe() -> Any:
    return load(RECIPES / "rtmo-1280x640.yaml")


@pytest.fixture(scope="module")
def exports(recipe: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Real exports at 640x1280: without the fix, and with its patch entered twice (idempotence)."""
    fix, ctx, root = RtmoRectPriors(), FixContext(recipe), tmp_path_factory.mktemp("rtmo1280")
    out = {}
    for name, patches in (("plain", []), ("fixed", [fix.patch(ctx), fix.patch(ctx)])):
        (root / name).mkdir()
        start = time.perf_counter()
        info = MmposeSource(recipe.source).export(recipe, root / name, patches)
        out[name] = {"dir": root / name, "info": info, "seconds": time.perf_counter() - start}
        print(f"export 640x1280 {name}: {out[name]['seconds']:.1f} s")
    return out


def parity_rows(recipe: Any, run: dict[str, Any]) -> list[dict[str, Any]]:
    runner, info = OrtRunner(run["dir"] / "model.onnx"), run["info"]
    rows = []
    with MmposeSource(recipe.source).reference(recipe, run["dir"], []) as forward:
        for sample in SAMPLES:
            x = image_tensor(resolve_sample(sample, RECIPES), (640, 1280), recipe.input.preprocess)
            rows += compare_outputs(info.outputs, forward(x), runner.run_one(x), info.output_kinds, TOL)
    return rows


@pytest.mark.slow
def test_without_fix_rectangular_export_does_not_match(recipe: Any, exports: dict[str, Any]) -> None:
    """Measured: no reference detection of either image finds its ORT counterpart (IoU >= 0.5);
    where a pair does match by chance, its keypoints are > 8 px apart."""
    rows = parity_rows(recipe, exports["plain"])
    for r in rows:
        print(
            f"without fix: matched {r['matched']}, unmatched ref {r['unmatched_ref']}, got {r['unmatched_got']}, "
            f"keypoints_px_max {r.get('keypoints_px_max')}"
        )
    assert not any(r["passed"] for r in rows)
    for r in rows:
        assert r["unmatched_ref"] >= 1 and (r["matched"] == 0 or r["keypoints_px_max"] > 8.0), r


@pytest.mark.slow
def test_with_fix_rectangular_export_matches(recipe: Any, exports: dict[str, Any]) -> None:
    rows = parity_rows(recipe, exports["fixed"])
    for r in rows:
        print(
            f"with fix: matched {r['matched']}, box_px_max {r['box_px_max']:.3g}, keypoints_px_max "
            f"{r['keypoints_px_max']:.3g}"
        )
    assert all(r["passed"] for r in rows), [r.get("reason") for r in rows]
    assert all(r["matched"] >= 1 for r in rows)
    assert max(r["keypoints_px_max"] for r in rows) < 2.0 and max(r["box_px_max"] for r in rows) < 1.0


@pytest.mark.slow
def test_guarantee_reads_the_grid_off_the_graph(recipe: Any, exports: dict[str, Any]) -> None:
    fix, ctx = RtmoRectPriors(), FixContext(recipe)
    good = fix.guarantee(onnx.load(str(exports["fixed"]["dir"] / "model.onnx")), ctx)
    bad = fix.guarantee(onnx.load(str(exports["plain"]["dir"] / "model.onnx")), ctx)
    assert good.ok, good.detail
    assert "40x80 / 20x40 (H x W)" in good.detail and "0 of 256 channels" in good.detail
    assert not bad.ok and "not row-major grids" in bad.detail, bad.detail


@pytest.mark.slow  # first import of mmpose.models: ~8 s on this machine
def test_check_applies_to_mmpose_132_and_patch_restores(recipe: Any) -> None:
    from mmpose.models.heads.hybrid_heads.rtmo_head import RTMOHead
    from mmpose.models.necks.hybrid_encoder import HybridEncoder

    fix, ctx = FIXES.get("rtmo-rect-priors")(), FixContext(recipe)
    assert fix.stage == "source"
    before = (RTMOHead.switch_to_deploy, HybridEncoder.switch_to_deploy)
    first = fix.check(ctx)
    assert first.status == "applies" and "RTMOHead" in first.why and "HybridEncoder" in first.why
    with fix.patch(ctx):
        assert fix.check(ctx).status == "not-needed"
        with fix.patch(ctx):  # entering again changes nothing
            assert fix.check(ctx).status == "not-needed"
        assert fix.check(ctx).status == "not-needed"
    assert (RTMOHead.switch_to_deploy, HybridEncoder.switch_to_deploy) == before
    assert fix.check(ctx) == first


@pytest.mark.slow
def test_patch_restores_on_error(recipe: Any) -> None:
    from mmpose.models.heads.hybrid_heads.rtmo_head import RTMOHead

    before = RTMOHead.switch_to_deploy
    with pytest.raises(ValueError, match="boom"), RtmoRectPriors().patch(FixContext(recipe)):
        raise ValueError("boom")
    assert RTMOHead.switch_to_deploy is before


def test_guarantee_on_a_graph_without_rtmo_constants(recipe: Any) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    verdict = RtmoRectPriors().guarantee(helper.make_model(graph), FixContext(recipe))
    assert not verdict.ok and "no flatten_stride constant" in verdict.detail
