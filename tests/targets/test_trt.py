"""trt: profiles, trtexec lines, the `unavailable` status without tensorrt / GPU, and (on a GPU) the engine."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from helpers import trt_models as M
from pydantic import ValidationError

from recipekit.core.errors import GateFailed, Unavailable
from recipekit.recipe.schema import Batch
from recipekit.targets.base import TargetContext
from recipekit.targets.trt.build import probe, strongly_typed
from recipekit.targets.trt.engine import TrtConfig, TrtTarget
from recipekit.targets.trt.profiles import (
    ShapeProfile,
    cases,
    engine_plan,
    generation,
    precision_flags,
    shape_profiles,
    shell_line,
    trtexec_command,
)

HAVE_TRT = "unavailable" not in probe()


def ctx(recipe, tmp_path: Path) -> TargetContext:
    return TargetContext(recipe, tmp_path, lambda: None, {})


def test_profiles_from_recipe_keep_opt_apart_from_max(tmp_path: Path) -> None:
    model = onnx.load(str(M.grouped_conv(tmp_path, computed_shape=False)))
    rec = M.recipe("trt", 32, batch=(1, 2, 8))
    (p,) = shape_profiles(model, rec, [])
    assert (p.min, p.opt, p.max) == ((1, 8, 4, 4), (2, 8, 4, 4), (8, 8, 4, 4))
    several = shape_profiles(model, rec, [Batch(min=1, opt=1, max=1), Batch(min=2, opt=3, max=16)])
    assert [(q.min[0], q.opt[0], q.max[0]) for q in several] == [(1, 1, 1), (2, 3, 16)]


def test_dynamic_hw_spans_the_declared_shapes(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3, "H", "W"])
    path = M.tiny_graph(tmp_path, [helper.make_node("Relu", ["images"], ["out"])], [x], [y], name="hw")
    rec = M.recipe("trt", 320, hw=True).model_copy(
        update={"input": M.recipe("trt", 320).input.model_copy(update={"shapes": [(256, 448), (384, 320)]})}
    )
    (p,) = shape_profiles(onnx.load(str(path)), rec, [])
    assert (p.min, p.opt, p.max) == ((1, 3, 256, 320), (2, 3, 320, 320), (4, 3, 384, 448))
    assert [(s, b) for s, b, _ in cases([p], rec)] == [((320, 320), b) for b in (1, 2, 3, 4)] + [
        ((256, 448), b) for b in (1, 2, 3, 4)
    ] + [((384, 320), b) for b in (1, 2, 3, 4)]


def test_trtexec_command_lines() -> None:
    one = [ShapeProfile("images", (1, 3, 160, 160), (2, 3, 160, 160), (4, 3, 160, 160))]
    common = {"trtexec": "/usr/src/tensorrt/bin/trtexec", "onnx": "model.onnx", "engine": "model.engine"}
    argv = trtexec_command(one, precision="fp16", workspace_mib=512, timing_cache="timing.cache", gen="10", **common)
    assert shell_line(argv) == (
        "/usr/src/tensorrt/bin/trtexec --onnx=model.onnx --saveEngine=model.engine "
        "--minShapes=images:1x3x160x160 --optShapes=images:2x3x160x160 --maxShapes=images:4x3x160x160 "
        "--stronglyTyped --memPoolSize=workspace:512 --timingCacheFile=timing.cache"
    )
    two = [*one, ShapeProfile("in:0", (8, 3, 160, 160), (8, 3, 160, 160), (16, 3, 160, 160))]
    argv = trtexec_command(
        two,
        trtexec="trtexec",
        onnx="m.onnx",
        engine="m.engine",
        precision="int8",
        workspace_mib=64,
        timing_cache="t.cache",
        gen="11",
    )
    assert argv[3:6] == ["--profile=0", "--minShapes=images:1x3x160x160", "--optShapes=images:2x3x160x160"]
    assert argv[7:9] == ["--profile=1", "--minShapes='in:0':8x3x160x160"]
    assert argv[-2:] == ["--memPoolSize=workspace:64", "--timingCacheFile=t.cache"]  # 11: always strongly typed
    with pytest.raises(ValueError, match="one optimization profile per engine"):
        trtexec_command(
            two, trtexec="t", onnx="m", engine="e", precision="fp32", workspace_mib=64, timing_cache="c", gen="8"
        )


@pytest.mark.parametrize(
    ("precision", "gen", "flags"),
    [
        ("fp32", "8", []),
        ("fp16", "8", ["--fp16"]),
        ("int8", "8", ["--int8"]),
        ("fp32", "10", []),
        ("int8", "10", ["--stronglyTyped"]),
        ("fp16", "11", []),
    ],
)
def test_precision_flags_per_generation(precision: str, gen: str, flags: list[str]) -> None:
    assert precision_flags(precision, gen) == flags


def test_engine_plan_one_profile_per_engine_on_8() -> None:
    two = [
        ShapeProfile("x", (1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 8, 8)),
        ShapeProfile("x", (2, 3, 8, 8), (3, 3, 8, 8), (4, 3, 8, 8)),
    ]
    assert engine_plan(two, "8", "model.engine") == [
        {"engine": "model.p0.engine", "profiles": [0]},
        {"engine": "model.p1.engine", "profiles": [1]},
    ]
    assert engine_plan(two, "10", "model.engine") == [{"engine": "model.engine", "profiles": [0, 1]}]
    assert generation("8.6.2") == "8" and generation("10.3.0") == "10" and generation("11.4.0.106") == "11"
    with pytest.raises(ValueError, match="not supported"):
        generation("7.1.3")


def test_strongly_typed_from_the_onnx_precision() -> None:
    assert not strongly_typed("10.3.0", "fp32") and strongly_typed("10.3.0", "int8")
    assert strongly_typed("11.4.0", "fp32")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"profiles": [{"min": 4, "opt": 2, "max": 8}]}, "expected min <= opt <= max, got min=4, opt=2, max=8"),
        ({"workspace_mib": 1}, "greater than or equal to 16"),
        ({"fp32": True}, "Extra inputs are not permitted"),
        ({"fp16": True}, "fp16 was removed: set export.precision: fp16"),
        ({"int8": True}, "int8 was removed: set export.precision: int8"),
        ({"calibration": ["a.jpg"]}, "calibration was removed: set input.calibration"),
    ],
)
def test_config_errors(data: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrtConfig.model_validate(data)


@pytest.mark.skipif(HAVE_TRT, reason="tensorrt and a CUDA GPU are present")
def test_unavailable_here_with_the_reason(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = M.grouped_conv(tmp_path, computed_shape=False)
    with pytest.raises(Unavailable) as info:
        TrtTarget().build(path, out, ctx(M.recipe("trt", 32), tmp_path))
    print(info.value.reason)
    assert info.value.reason.startswith("TensorRT engine cannot be built on this machine: ")
    assert "tensorrt cannot be imported" in info.value.reason and "no CUDA GPU found" in info.value.reason
    assert list(out.iterdir()) == []  # nothing pretends an engine was built
    assert TrtTarget.environment_key() == {"unavailable": info.value.reason}


def test_lint_failure_stops_the_build_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(GateFailed, match="trt-lint refused the model for trt: Conv 'pe/conv/Conv'"):
        TrtTarget().build(M.grouped_conv(tmp_path, computed_shape=True), out, ctx(M.recipe("trt", 32), tmp_path))
    assert list(out.iterdir()) == []


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TRT, reason=probe().get("unavailable", ""))
def test_engine_is_plain_and_passes_parity_at_every_batch(tmp_path: Path) -> None:
    """GPU only: the engine file is what trtexec would write, and each batch matches PyTorch."""
    import numpy as np

    from recipekit.onnx.compare import compare_tensor
    from recipekit.onnx.golden import Golden

    rec = M.recipe("trt", 160)
    src, _ = M.fixed(M.export("yolo11n-seg.yaml", 160), rec)
    golden: Golden = M.golden("yolo11n-seg.yaml", 160)
    out = tmp_path / "out"
    out.mkdir()
    target = TrtTarget()
    result = target.build(src, out, TargetContext(rec, tmp_path, lambda: golden, {}))
    assert not (out / result.artifact).read_bytes().lstrip().startswith(b"{")
    assert result.manifest["environment"]["compute_capability"]
    runner = target.runner(out, result, TargetContext(rec, tmp_path, lambda: golden, {}))
    for b in (1, 2, 3, 4):
        picked = [golden.cases[i % 2] for i in range(b)]
        got = runner.run_one(np.concatenate([c.input for c in picked]))
        for j, name in enumerate(golden.output_names):
            ref = np.concatenate([c.outputs[j] for c in picked])
            assert compare_tensor(name, ref, got[j], 1e-2, 1e-2)["passed"]
