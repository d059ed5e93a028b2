"""The TensorRT code names only what the pinned TensorRT releases export (their bindings wheels, no GPU).

scripts/fetch-trt-bindings.sh (run by scripts/setup.sh) downloads the wheels; tests/helpers/trt_api.py
loads each release's real pybind11 module against stub libraries and lists its names;
tests/helpers/trt_uses.py reads which names the code uses on each release's version branch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.trt_api import PINNED, missing
from helpers.trt_uses import uses

import recipekit.targets.trt as trt_pkg

TRT = Path(trt_pkg.__file__).parent
MAJOR = {v: int(v.split(".")[0]) for v in PINNED}
X86 = [v for v in PINNED if MAJOR[v] >= 10]  # the trt target: the `tensorrt` extra's range
DEVICE = list(PINNED)  # check.py also runs on JetPack 5 (TensorRT 8.x)
FILES = [("build.py", X86), ("device.py", X86), ("check.py", DEVICE)]


@pytest.mark.parametrize(("file", "version"), [(f, v) for f, vs in FILES for v in vs])
def test_code_names_only_exported_api(file, version, tmp_path_factory):
    found = uses(TRT / file, MAJOR[version])
    assert len(found) > 5, f"{file}: the walker found almost no TensorRT use: {found}"
    assert missing(found, version, str(tmp_path_factory.getbasetemp() / "trt")) == []


OLD_INT8 = """
import tensorrt as trt

def build(calibrator, onnx):
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    network = builder.create_network(0)
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    config.int8_calibrator = calibrator
    config.set_calibration_profile(builder.create_optimization_profile())
    return builder.build_serialized_network(network, config)

class Calibrator(trt.IInt8EntropyCalibrator2):
    pass
"""


def test_names_tensorrt_11_removed_fail(tmp_path, tmp_path_factory):
    src = tmp_path / "old_build.py"
    src.write_text(OLD_INT8)
    work = str(tmp_path_factory.getbasetemp() / "trt")
    assert missing(uses(src, 10), "10.16.1.11", work) == []
    gone = {m.split(": ", 1)[1] for m in missing(uses(src, 11), "11.4.0.106", work)}
    assert gone == {
        "BuilderFlag.FP16",
        "IBuilderConfig.int8_calibrator",
        "IBuilderConfig.set_calibration_profile",
        "tensorrt.IInt8EntropyCalibrator2",
    }


BRANCHES = """
import tensorrt as trt

def flags(gen):
    if gen == "8":
        return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
"""


def test_version_branches_are_checked_per_release(tmp_path, tmp_path_factory):
    work = str(tmp_path_factory.getbasetemp() / "trt")
    branched, flat = tmp_path / "branched.py", tmp_path / "flat.py"
    branched.write_text(BRANCHES)
    flat.write_text(BRANCHES.replace('if gen == "8":', "if gen:"))  # not a version test: both lines checked
    assert missing(uses(branched, 8), "8.6.1", work) == []  # STRONGLY_TYPED is 10+, never reached on 8
    assert missing(uses(branched, 11), "11.4.0.106", work) == []  # EXPLICIT_BATCH is gone in 11, not reached
    assert missing(uses(flat, 11), "11.4.0.106", work) == ["flat.py:6: NetworkDefinitionCreationFlag.EXPLICIT_BATCH"]
    assert missing(uses(flat, 8), "8.6.1", work) == ["flat.py:7: NetworkDefinitionCreationFlag.STRONGLY_TYPED"]


def test_every_planned_jetpack_is_checked_against_bindings_of_its_tensorrt():
    from recipekit.targets.trt.check import version_parts
    from recipekit.targets.trt.jetson import PLANS

    for plan in PLANS:
        covered = [v for v in DEVICE if plan.first <= version_parts(v) < plan.below]
        assert covered, f"{plan.title}: no pinned bindings wheel in TensorRT {plan.first} .. {plan.below}"
