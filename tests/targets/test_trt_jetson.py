"""trt-jetson: the bundle's contents and checksums, and its own check program run here with ONNX Runtime.

yolo11n-seg (Ultralytics architecture, seed 0, 160x160, dynamic batch 1..4) against its PyTorch
outputs at every batch size of the profile; an altered golden output must fail the check.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import trt_models as M

from recipekit.core.errors import GateFailed, UsageError
from recipekit.recipe.schema import Batch
from recipekit.targets.base import TargetContext
from recipekit.targets.trt.devicecheck import device_check
from recipekit.targets.trt.jetson import TrtJetsonConfig, TrtJetsonTarget

IMGSZ = 160
SEG_KINDS = {"output0": {"kind": "tensor"}, "output1": {"kind": "tensor"}}


def build(tmp: Path, config: TrtJetsonConfig | None = None, src: Path | None = None) -> tuple[Path, object]:
    rec = M.recipe("trt-jetson", IMGSZ, target_config=config)
    if src is None:
        src, _ = M.fixed(M.export("yolo11n-seg.yaml", IMGSZ), rec)
    golden = M.golden("yolo11n-seg.yaml", IMGSZ)
    out = tmp / "bundle"
    out.mkdir()
    result = TrtJetsonTarget(config).build(src, out, TargetContext(rec, tmp, lambda: golden, SEG_KINDS))
    return out, result


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    return build(tmp_path_factory.mktemp("jetson"))


COMPARE = Path(M.__file__).parents[2] / "recipekit/onnx/compare"


def resum(root: Path) -> None:
    from recipekit.targets.trt.bundle import write_sums

    write_sums(root)


@pytest.mark.slow
def test_bundle_contents_and_checksums(bundle: tuple[Path, object]) -> None:
    root, result = bundle
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "SHA256SUMS",
        "bundle.json",
        "check.py",
        "commands-jp5.txt",
        "commands-jp6.txt",
        "commands-jp7.txt",
        "commands-trt11.txt",
        *sorted(f"compare/{p.name}" for p in COMPARE.glob("*.py")),
        *[f"golden/160x160_b{b}.npz" for b in (1, 2, 3, 4)],
        "model.onnx",
        "pixels.py",
        "profiles.json",
        "trtexec.sh",
    ]
    sums = dict(line.split("  ")[::-1] for line in (root / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == set(files) - {"SHA256SUMS"}
    assert all(hashlib.sha256((root / f).read_bytes()).hexdigest() == d for f, d in sums.items())
    assert (root / "check.py").read_bytes() == (
        Path(M.__file__).parents[2] / "recipekit/targets/trt/check.py"
    ).read_bytes()
    profiles = json.loads((root / "profiles.json").read_text())
    assert profiles["profiles"] == [
        {"input": "images", "min": [1, 3, 160, 160], "opt": [2, 3, 160, 160], "max": [4, 3, 160, 160]}
    ]
    line = (
        "/usr/src/tensorrt/bin/trtexec --onnx=model.onnx --saveEngine=model.engine --minShapes=images:1x3x160x160 "
        "--optShapes=images:2x3x160x160 --maxShapes=images:4x3x160x160 --memPoolSize=workspace:1024 "
        "--timingCacheFile=timing.cache"
    )
    assert (root / "commands-jp6.txt").read_text() == line + "\n"
    assert (root / "commands-jp5.txt").read_text() == line + "\n"  # one profile: the same line on TensorRT 8.x
    assert (root / "commands-trt11.txt").read_text() == line + "\n"  # fp32: no precision flags anywhere
    typed = line.replace(" --memPoolSize", " --stronglyTyped --memPoolSize")  # 10.12+: strongly typed, fp32 too
    assert (root / "commands-jp7.txt").read_text() == typed + "\n"
    assert "check.py --trtexec" in (root / "trtexec.sh").read_text()
    assert result.artifact == "model.onnx" and result.manifest["trtexec"]["jp6"] == [line]
    readme = (root / "README.md").read_text()
    assert "JetPack 7.x (TensorRT 10.13 on Thor; 10.16 on 7.2): TensorRT >= 10.12, < 11: commands-jp7.txt" in readme
    assert result.manifest["precision"] == "fp32" and result.manifest["golden"] == "PyTorch source outputs"


@pytest.mark.slow
@pytest.mark.slow
def test_check_runs_an_image_preprocessed_as_the_recipe_declares(bundle: tuple[Path, object], tmp_path: Path) -> None:
    """`check.py --image`: the bundle's own pixels.py preprocesses a photo (the tensor the gates make),
    the model runs on it; `--preprocess` writes that tensor."""
    import subprocess
    import sys

    from recipekit.onnx.preprocess import image_tensor, resolve_sample

    root, _ = bundle
    photo = resolve_sample("ultralytics:bus.jpg", Path("."))
    run = [sys.executable, "check.py", "--backend", "ort"]
    done = subprocess.run([*run, "--image", str(photo)], cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and f"input [1, 3, {IMGSZ}, {IMGSZ}]" in done.stdout, done.stdout + done.stderr
    args = ["--preprocess", str(photo), "--out", str(tmp_path)]
    done = subprocess.run([*run, *args], cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    rec = M.recipe("trt-jetson", IMGSZ)
    want = image_tensor(photo, (IMGSZ, IMGSZ), rec.input.preprocess)
    assert np.load(tmp_path / "bus.npy").tobytes() == want.tobytes()


def test_golden_batches_stack_the_source_outputs(bundle: tuple[Path, object]) -> None:
    root, _ = bundle
    golden = M.golden("yolo11n-seg.yaml", IMGSZ)
    with np.load(root / "golden/160x160_b3.npz") as z:
        assert (
            z["input"].shape == (3, 3, 160, 160)
            and z["out0"].shape == (3, 116, 525)
            and z["out1"].shape == (3, 32, 40, 40)
        )
        assert np.array_equal(z["input"][2], golden.cases[0].input[0])  # two samples, repeated cyclically
        assert np.array_equal(z["out0"][1], golden.cases[1].outputs[0][0])


@pytest.mark.slow
def test_check_passes_at_every_batch_with_onnxruntime(
    bundle: tuple[Path, object], capfd: pytest.CaptureFixture
) -> None:
    root, _ = bundle
    assert device_check(root, "ort") == 0
    out = capfd.readouterr().out
    for b in (1, 2, 3, 4):
        assert f"  160x160     {b}  output0" in out
    assert "8/8 comparisons within tolerance" in out and "MISMATCH" not in out


@pytest.mark.slow
def test_check_fails_on_altered_golden_outputs(
    bundle: tuple[Path, object], tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    root = shutil.copytree(bundle[0], tmp_path / "altered")
    case = root / "golden/160x160_b3.npz"
    with np.load(case) as z:
        arrays = dict(z)
    arrays["out0"][2, :4] += 5.0  # boxes of the third image moved by 5 px
    with open(case, "wb") as fh:
        np.savez(fh, **arrays)
    resum(root)  # an intact bundle whose reference is wrong: the comparison must catch it
    assert device_check(root, "ort") == 1
    out = capfd.readouterr().out
    assert "  160x160     3  output0              tensor" in out and "MISMATCH" in out
    assert "7/8 comparisons within tolerance" in out


@pytest.mark.slow
def test_damaged_bundle_is_refused(bundle: tuple[Path, object], tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    root = shutil.copytree(bundle[0], tmp_path / "damaged")
    (root / "golden/160x160_b1.npz").write_bytes(b"truncated")
    assert device_check(root, "ort") == 2
    assert "golden/160x160_b1.npz: sha256 differs" in capfd.readouterr().err


@pytest.mark.slow
def test_trt_backend_unavailable_here(
    bundle: tuple[Path, object], capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        import tensorrt  # noqa: F401

        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    monkeypatch.chdir(bundle[0].parent)  # a relative BUNDLE path, as typed on the command line
    assert device_check(Path(bundle[0].name), "trt") == 3
    assert "backend trt unavailable: tensorrt is not installed" in capfd.readouterr().err


@pytest.mark.slow
def test_lint_failure_stops_the_bundle(tmp_path: Path) -> None:
    with pytest.raises(
        GateFailed, match=r"Conv '/model.10/m/m.0/attn/pe/conv/Conv': input \(\?,\?,\?,\?\) has unknown channels"
    ):
        build(tmp_path, src=M.export("yolo11n-seg.yaml", IMGSZ))
    assert list((tmp_path / "bundle").iterdir()) == []


FAKE_TRTEXEC = '#!/bin/sh\necho "$*" >> "$TRTEXEC_LOG"\n'
PROBES = [  # the TensorRT a device reports -> the plan check.py must take
    ("8.5.2.2", "jp5"),
    ("8.6.2", "jp5"),
    ("10.3.0", "jp6"),
    ("10.7.0", "jp6"),
    ("10.13.3.9", "jp7"),
    ("10.16.1", "jp7"),
    ("11.4.1", "trt11"),
]


@pytest.mark.slow
def test_check_picks_each_planned_jetpacks_commands_from_the_tensorrt_it_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two profiles: JetPack 5 (TensorRT 8.x) builds one engine per profile, later ones one engine. Only the
    version probe is faked (RECIPEKIT_TENSORRT_VERSION) and trtexec is a script recording its arguments."""
    cfg = TrtJetsonConfig(trtexec="trtexec", profiles=[Batch(min=1, opt=1, max=1), Batch(min=2, opt=3, max=4)])
    root, result = build(tmp_path, cfg)
    jp6 = (root / "commands-jp6.txt").read_text()
    assert (
        "--profile=0 --minShapes=images:1x3x160x160 --optShapes=images:1x3x160x160 --maxShapes=images:1x3x160x160 "
        "--profile=1 --minShapes=images:2x3x160x160 --optShapes=images:3x3x160x160 --maxShapes=images:4x3x160x160 "
        in jp6
        and jp6.count("\n") == 1
    )
    jp5 = (root / "commands-jp5.txt").read_text().splitlines()
    assert len(jp5) == 2 and all("--profile=" not in line for line in jp5)
    assert "--saveEngine=model.p0.engine" in jp5[0] and "--maxShapes=images:4x3x160x160" in jp5[1]
    assert [(c["batch"], c["profile"]) for c in result.manifest["cases"]] == [(1, 0), (2, 1), (3, 1), (4, 1)]
    bin_dir, log = tmp_path / "bin", tmp_path / "trtexec.log"
    bin_dir.mkdir()
    (bin_dir / "trtexec").write_text(FAKE_TRTEXEC)
    (bin_dir / "trtexec").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("TRTEXEC_LOG", str(log))
    checked = set()
    for version, plan in PROBES:
        monkeypatch.setenv("RECIPEKIT_TENSORRT_VERSION", version)
        log.unlink(missing_ok=True)
        assert device_check(root, "ort", ["--trtexec"]) == 0
        ran = ["trtexec " + args for args in log.read_text().splitlines()]
        assert ran == (root / f"commands-{plan}.txt").read_text().splitlines(), version
        if plan in checked:  # the cases once per plan: each engine serves the profiles it holds
            continue
        checked.add(plan)
        assert device_check(root, "ort", ["--json", str(tmp_path / f"{version}.json")]) == 0
        doc = json.loads((tmp_path / f"{version}.json").read_text())
        assert doc["tensorrt"] == version and doc["plan"] == plan and doc["generation"] == version.split(".")[0]
        engines = ["model.p0.engine", "model.p1.engine"] if plan == "jp5" else ["model.engine"]
        assert sorted({r["engine"] for r in doc["rows"]}) == engines
    for version in ("7.1.3", "8.4.1", "9.2.0", "12.0.0"):  # JetPack 4's and unplanned TensorRT: said so, exit 3
        monkeypatch.setenv("RECIPEKIT_TENSORRT_VERSION", version)
        assert device_check(root, "ort") == 3, version


def test_device_check_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a trt-jetson bundle"):
        device_check(tmp_path, "ort")
    with pytest.raises(UsageError, match="--backend: expected one of ort, trt"):
        device_check(tmp_path, "cuda")


def gate_context(root: Path):
    from recipekit.gates.base import GateContext

    rec = M.recipe("trt-jetson", IMGSZ)
    return GateContext(rec, "trt-jetson", root, "bundle.json", root / "model.onnx", lambda: None, lambda: None)


@pytest.mark.slow
def test_jetson_device_gate_is_unavailable_off_device(bundle: tuple[Path, object]) -> None:
    from recipekit.targets.trt.ondevice import JetsonDevice

    result = JetsonDevice().check(gate_context(bundle[0]))
    assert result.status == "unavailable" and "not a Jetson" in result.message and "jetson=1" in result.message


@pytest.mark.slow
def test_jetson_device_on_a_device_without_tensorrt(
    bundle: tuple[Path, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The device probe faked (an L4T release file); the bundle's real check.py then finds no TensorRT."""
    from recipekit.targets.trt import ondevice

    release = tmp_path / "nv_tegra_release"
    release.write_text("# R36 (release), REVISION: 4.0\n")
    monkeypatch.setattr(ondevice, "TEGRA_RELEASE", release)
    real = ondevice.importlib.util.find_spec
    monkeypatch.setattr(ondevice.importlib.util, "find_spec", lambda n: object() if n == "tensorrt" else real(n))
    gate = ondevice.JetsonDevice(ondevice.JetsonDeviceConfig(build_engines=False))
    result = gate.check(gate_context(bundle[0]))
    assert result.status == "unavailable" and "tensorrt is not installed" in result.message, result


@pytest.mark.slow
def test_jetson_device_verdicts_from_the_bundles_own_check(bundle: tuple[Path, object], tmp_path: Path) -> None:
    """verdict() on real check.py runs: every case within tolerance, an altered reference, a damaged bundle."""
    import subprocess
    import sys

    from recipekit.targets.trt.ondevice import verdict

    def run(root: Path) -> tuple[subprocess.CompletedProcess, dict]:
        rows = tmp_path / f"{root.name}.json"
        cmd = [sys.executable, "check.py", "--backend", "ort", "--json", str(rows)]
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
        return proc, (json.loads(rows.read_text()) if rows.is_file() else {})

    good = verdict(*run(bundle[0]))
    assert good.status == "passed" and len(good.figures["rows"]) == 8
    assert good.figures["plan"] == "jp6"  # no TensorRT here: the default plan, shown
    altered = shutil.copytree(bundle[0], tmp_path / "altered")
    case = altered / "golden/160x160_b2.npz"
    with np.load(case) as z:
        arrays = dict(z)
    arrays["out0"][1, :4] += 5.0
    with open(case, "wb") as fh:
        np.savez(fh, **arrays)
    resum(altered)
    bad = verdict(*run(altered))
    assert bad.status == "failed" and "batch 2" in bad.failures[0], bad.failures
    damaged = shutil.copytree(bundle[0], tmp_path / "damaged")
    (damaged / "golden/160x160_b1.npz").write_bytes(b"truncated")
    broken = verdict(*run(damaged))
    assert broken.status == "failed" and "sha256 differs" in broken.failures[0], broken.failures


def test_jetson_device_needs_a_jetson_worker() -> None:
    """On a Dask cluster the gate's step runs only on a worker offering `jetson` (Plugin.resources)."""
    from helpers.common import RECIPES

    from recipekit.graph.executors.cluster import step_resources
    from recipekit.graph.plan import plan
    from recipekit.recipe.load import load

    recipe = load(RECIPES / "yolo11n-seg-b4.yaml", ["+gates.jetson-device={}"])
    steps = {s.task: s for s in plan(recipe, ["trt-jetson"], check=False)}
    assert step_resources(steps["yolo11n-seg-b4:gate:trt-jetson.jetson-device"]) == {"jetson": 1}
    assert step_resources(steps["yolo11n-seg-b4:gate:trt-jetson.parity"]) == {}
