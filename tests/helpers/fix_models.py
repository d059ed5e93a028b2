"""Helpers for the fix tests: a Recipe built in code, a seeded synthetic Ultralytics export, ORT runs."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

SAMPLE = "ultralytics:bus.jpg"


def make_recipe(model: str, **export: Any) -> Any:
    """A resolved Recipe built directly (no YAML): what a fix's FixContext carries."""
    from recipekit.core.plugin import Strict
    from recipekit.recipe.schema import Export, Input, Recipe, TargetEntry
    from recipekit.sources.ultralytics.source import UltralyticsConfig

    return Recipe(
        name="fix-test",
        source=UltralyticsConfig(model=model, init="synthetic"),
        input=Input(samples=[SAMPLE]),
        export=Export(**export),
        targets={"ort": TargetEntry(config=Strict())},
        base_dir=str(Path.cwd()),
    )


def build_synthetic(recipe: Any) -> Any:
    """The seeded yolo model of `recipe.source.model`, synthesized to detect on bus.jpg (not on blanks)."""
    from recipekit.sources.ultralytics.env import prepare

    prepare()
    import torch
    from ultralytics import YOLO

    from recipekit.sources.ultralytics.synth import synthesize

    torch.manual_seed(0)
    yolo = YOLO(recipe.source.model)
    synthesize(yolo.model, recipe)
    return yolo.model


def export_ultralytics(recipe: Any, out: Path, patch: AbstractContextManager | None = None, **args: Any) -> Path:
    """Ultralytics' own exporter on `build_synthetic(recipe)`; returns the ONNX path (in `out`)."""
    from recipekit.sources.ultralytics.env import prepare

    prepare()
    from ultralytics.engine.exporter import Exporter

    out.mkdir(parents=True, exist_ok=True)
    overrides = {
        "format": "onnx",
        "imgsz": list(recipe.export.imgsz),
        "opset": recipe.export.opset,
        "simplify": False,
        "device": "cpu",
        "verbose": False,
        "mode": "export",
        **args,
    }
    with patch or nullcontext():
        model = build_synthetic(recipe)
        model.pt_path = str(out / "model.pt")  # the exporter writes model.onnx beside it
        path = Exporter(overrides=overrides)(model=model)
    return Path(path)


def run_ort(model: Any, feeds: dict[str, Any]) -> list[Any]:
    """Run an ONNX model (path or ModelProto) on ONNX Runtime CPU."""
    import onnxruntime as ort

    data = str(model) if isinstance(model, Path) else model.SerializeToString()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"]).run(None, feeds)


def batch_of(image: Any, n: int) -> Any:
    """n different images: the sample, then seeded random images (so batch items differ)."""
    import numpy as np

    rng = np.random.default_rng(n)
    extra = [rng.random(image.shape[1:], dtype=np.float32)[None] for _ in range(n - 1)]
    return np.concatenate([image, *extra]).astype(np.float32)


def apply_checked(fix: Any, model: Any, ctx: Any) -> Any:
    """check -> apply -> guarantee, as the fix step runs it; asserts each verdict and idempotence."""
    assert fix.check(model, ctx).status == "applies", fix.check(model, ctx)
    out = fix.apply(model, ctx)
    assert out is not model
    verdict = fix.guarantee(out, ctx)
    assert verdict.ok, verdict.detail
    second = fix.check(out, ctx)
    assert second.status == "not-needed", second
    return out


def applied(fix: Any, src: Path) -> tuple[Any, Any]:
    """`fix` applied to the ONNX file `src`, held to every ONNX fix's contract: it applies, the result is
    a valid model, its guarantee holds and checking it again finds nothing to do. (check result, model)."""
    import onnx

    model = onnx.load(str(src))
    check = fix.check(model, None)
    assert check.status == "applies", check
    out = fix.apply(model, None)
    onnx.checker.check_model(out, full_check=True)
    assert fix.guarantee(out, None).ok
    assert fix.check(out, None).status == "not-needed"  # idempotent: a guarded graph is recognised
    return check, out


def jsep_before_after(src: Path, dest: Path, cases: list[tuple[str, Any]]) -> tuple[Any, Any]:
    """Both graphs run on the same `images` inputs in headless Chromium (JSEP WebGPU); the test is
    skipped, with the reason, where no browser can run."""
    import pytest

    from recipekit.core.errors import Unavailable
    from recipekit.targets.webgpu.web import run_in_browser

    feeds = [(name, {"images": x}) for name, x in cases]
    try:
        before = run_in_browser(src, feeds, "jsep", eps=("webgpu",))
        after = run_in_browser(dest, feeds, "jsep", eps=("webgpu",))
    except Unavailable as exc:
        pytest.skip(str(exc))
    return before, after
