"""Checkpoints are read, never run: malicious pickles are refused by name, real checkpoints load.

The malicious files would create a marker file when unpickled; it must never appear. Each source
that reads weights is tried through the CLI (`build` refuses at plan, exit 2, before any step)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from helpers.common import copy_recipes

from recipekit.sources import checkpoint
from recipekit.sources.checkpoint import CheckpointRefused
from recipekit.sources.ultralytics.loading import ultralytics_loading


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_files(tmp: Path, marker: Path) -> dict[str, Path]:
    """The same payload as a plain pickle (protocols 0, 2, 4), a torch zip and a legacy torch file."""
    import torch

    payload = {"model": _Evil(marker), "state_dict": {}}
    files = {}
    for proto in (0, 2, 4):
        files[f"pickle{proto}"] = tmp / f"evil{proto}.pkl"
        files[f"pickle{proto}"].write_bytes(pickle.dumps(payload, protocol=proto))
    files["torch-zip"] = tmp / "evil_zip.pt"
    torch.save(payload, files["torch-zip"])
    files["torch-legacy"] = tmp / "evil_legacy.pt"
    torch.save(payload, files["torch-legacy"], _use_new_zipfile_serialization=False)
    return files


def _dotted_pickle(marker: Path, how: str = "STACK_GLOBAL") -> bytes:
    """Protocol 4: `os.system` reached as the attribute path F.torch.os.system of an allowed-looking
    module (the unpickler walks it attribute by attribute), called on a command that makes `marker`."""

    def text(s: str) -> bytes:
        raw = s.encode()
        return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE

    if how == "STACK_GLOBAL":
        lookup = text("torch.nn.modules.conv") + text("F.torch.os.system") + b"\x93"
    else:  # GLOBAL 'module name\n' in a protocol-4 pickle: resolved the same way
        lookup = b"ctorch.nn.modules.conv\nF.torch.os.system\n"
    return b"\x80\x04" + lookup + text(f"touch {marker}") + b"\x85R." + b""


def _dotted_files(tmp: Path, marker: Path) -> dict[str, Path]:
    """The dotted payload as a plain pickle (STACK_GLOBAL and GLOBAL) and inside a torch zip."""
    import zipfile

    import torch

    files = {"dotted-pickle": tmp / "dotted.pkl", "dotted-global": tmp / "dotted_global.pkl"}
    files["dotted-pickle"].write_bytes(_dotted_pickle(marker))
    files["dotted-global"].write_bytes(_dotted_pickle(marker, "GLOBAL"))
    plain = tmp / "plain.pt"
    torch.save({"w": torch.ones(1)}, plain)
    files["dotted-zip"] = tmp / "dotted_zip.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(files["dotted-zip"], "w") as dst:
        for info in src.infolist():
            data = _dotted_pickle(marker) if info.filename.endswith("data.pkl") else src.read(info)
            dst.writestr(info, data)
    return files


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evil")
    marker = tmp / "MARKER"
    return {**_evil_files(tmp, marker), **_dotted_files(tmp, marker)}, marker


@pytest.mark.parametrize("family", sorted(checkpoint.FAMILIES))
def test_malicious_pickles_are_refused_by_name_and_never_run(evil, family):
    files, marker = evil
    for kind, path in files.items():
        if kind.startswith("dotted"):
            continue
        with pytest.raises(CheckpointRefused, match=r"asks to load posix\.system"):
            checkpoint.check(path, family)
        with pytest.raises(CheckpointRefused, match=r"posix\.system"):
            checkpoint.load(path, family)
        assert not marker.exists(), kind


DOTTED = r"asks to load torch\.nn\.modules\.conv\.F\.torch\.os\.system \(attribute path F\.torch\.os\.system"


@pytest.mark.parametrize("family", sorted(checkpoint.FAMILIES))
def test_a_dotted_global_is_resolved_as_the_unpickler_does_and_refused(evil, family):
    """The unpickler walks `F.torch.os.system` from torch.nn.modules.conv (a module the ultralytics
    family allows classes from): the scan keeps that split and refuses the attribute path."""
    files, marker = evil
    for kind in ("dotted-pickle", "dotted-global", "dotted-zip"):
        names = checkpoint.needed_globals(files[kind])
        assert [(n.module, n.attr) for n in names] == [("torch.nn.modules.conv", "F.torch.os.system")], kind
        with pytest.raises(CheckpointRefused, match=DOTTED):
            checkpoint.check(files[kind], family)
    with pytest.raises(CheckpointRefused, match="F.torch.os.system"):
        checkpoint.load(files["dotted-zip"], family)
    assert not marker.exists()


def test_a_prefix_allowed_name_must_be_a_module_on_the_path():
    """`torch.nn.modules.conv.F` looks like a module under an allowed prefix; it is an attribute."""
    fam = checkpoint.FAMILIES["ultralytics"]
    assert fam.allows(checkpoint.GlobalName("torch.nn.modules.conv", "Conv2d"))
    assert not fam.allows(checkpoint.GlobalName("torch.nn.modules.conv.F", "torch"))
    assert not fam.allows(checkpoint.GlobalName("torch.nn.modules", "conv.Conv2d"))
    assert not fam.allows(checkpoint.GlobalName("ultralytics.nn.modules.nothing_here", "Conv"))


def test_every_torch_data_name_is_one_torch_itself_allows():
    from torch import _weights_only_unpickler

    allowed = set(_weights_only_unpickler._get_allowed_globals())
    assert checkpoint.TORCH_DATA <= allowed, sorted(checkpoint.TORCH_DATA - allowed)


def _trainer_checkpoint(path: Path, arch: str) -> None:
    """A checkpoint written the way Ultralytics' trainer saves one (BaseTrainer.save_model): EMA model in
    half precision with its args namespace, optimizer state, numpy metrics, train args."""
    from copy import deepcopy

    import numpy as np
    import torch
    from ultralytics import YOLO
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG
    from ultralytics.utils.torch_utils import convert_optimizer_state_dict_to_fp16

    torch.manual_seed(0)
    model = YOLO(arch).model
    model.args = get_cfg(DEFAULT_CFG)  # an IterableSimpleNamespace, as during training
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    ckpt = {
        "epoch": 3,
        "best_fitness": np.float64(0.25),
        "model": None,
        "ema": deepcopy(model).half(),
        "updates": 12,
        "optimizer": convert_optimizer_state_dict_to_fp16(deepcopy(optimizer.state_dict())),
        "train_args": vars(model.args),
        "train_metrics": {"metrics/mAP50(B)": np.float64(0.5), "fitness": np.float64(0.25)},
        "train_results": {},
        "date": "2026-01-01T00:00:00",
        "version": "8.4.190",
        "license": "AGPL-3.0",
        "docs": "https://docs.ultralytics.com",
    }
    torch.save(ckpt, path)


@pytest.mark.parametrize("arch", ["yolo11n.yaml", "yolo11n-pose.yaml", "yolo11n-seg.yaml", "yolov10n.yaml"])
def test_trainer_checkpoint_loads_through_the_ultralytics_allowlist(tmp_path, arch):
    """The allowlist is the Ultralytics/torch layer classes and the data such a checkpoint holds: every
    global this file asks for is allowed and resolves; nothing outside it is needed."""
    from torch import nn

    path = tmp_path / "last.pt"
    _trainer_checkpoint(path, arch)
    names = set(checkpoint.needed_globals(path))
    assert names, "the scan finds the pickled classes"
    assert all(checkpoint.FAMILIES["ultralytics"].allows(n) for n in names)
    checkpoint.check(path, "ultralytics")
    loaded = checkpoint.load(path, "ultralytics")
    assert isinstance(loaded["ema"], nn.Module) and float(loaded["best_fitness"]) == 0.25
    with pytest.raises(CheckpointRefused, match="which state-dict checkpoints do not hold"):
        checkpoint.check(path, "state")


def test_ultralytics_builds_from_a_checkpoint_through_the_loader(tmp_path):
    """YOLO(path) inside `ultralytics_loading`: Ultralytics' own post-processing, our safe read."""
    from ultralytics import YOLO

    path = tmp_path / "last.pt"
    _trainer_checkpoint(path, "yolo11n.yaml")
    with ultralytics_loading():
        yolo = YOLO(str(path))
    assert type(yolo.model).__name__ == "DetectionModel"


def test_getattr_is_limited_to_layer_methods(tmp_path):
    """A pickled `getattr` may fetch a layer's method (old Ultralytics heads), never anything else."""
    import builtins

    import torch
    from ultralytics.nn.modules.conv import Conv

    class Sneaky:
        def __reduce__(self):
            return (builtins.getattr, (Conv, "__subclasses__"))

    path = tmp_path / "sneaky.pt"
    torch.save({"x": Sneaky()}, path)
    checkpoint.check(path, "ultralytics")  # the names alone are allowed...
    with pytest.raises(CheckpointRefused, match="refused"):
        checkpoint.load(path, "ultralytics")  # ...the object is not


@pytest.mark.parametrize("content", [b"hello, these are not weights\n", b"", b"\x89PNG\r\n\x1a\n0000"])
def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path, content):
    path = tmp_path / "weights.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointRefused, match="weights.pt is not a checkpoint"):
        checkpoint.check(path, "state")


def test_safetensors_state_dict(tmp_path):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"a.weight": torch.ones(2, 3)}, str(path))
    assert checkpoint.check(path, "state") == "safetensors"
    assert checkpoint.state_dict(path)["a.weight"].shape == (2, 3)


def test_trust_code_is_the_only_way_to_unpickle_code(tmp_path):
    import torch

    marker = tmp_path / "MARKER"
    path = tmp_path / "own.pt"
    torch.save({"model": _Evil(marker)}, path)
    with pytest.raises(CheckpointRefused):
        checkpoint.load(path, "ultralytics")
    assert not marker.exists()
    checkpoint.load(path, "ultralytics", trust_code=True)  # the user's explicit opt-in: it does run
    assert marker.exists()


SOURCES = {
    "ultralytics": ("yolo11n.yaml", ["source.init=weights", "source.weights={w}"]),
    "torchvision": ("fasterrcnn-mnv3.yaml", ["source.init=weights", "source.weights={w}"]),
    "mmpose": ("rtmo-640x640.yaml", ["source.init=weights", "source.weights={w}"]),
    "python": ("python-mobilenetv3.yaml", ["+source.weights={w}"]),
    "python-files": ("python-mobilenetv3.yaml", ["+source.files=[{w}]"]),
}


def test_every_source_kind_is_tried():
    from recipekit.sources import SOURCES as REGISTERED

    kinds = {k.split("-")[0] for k in SOURCES} | {"onnx"}  # an ONNX source reads no pickle: see below
    assert kinds == set(REGISTERED.names())


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("kind", ["pickle2", "torch-zip", "torch-legacy", "dotted-pickle", "dotted-zip"])
def test_every_source_refuses_a_malicious_checkpoint_at_plan(tmp_path, cli, evil, source, kind):
    files, marker = evil
    recipes = copy_recipes(tmp_path / "recipes")
    recipe, overrides = SOURCES[source]
    args = [o.format(w=files[kind]) for o in overrides]
    code, out, err = cli("build", recipes / recipe, *args, "--cache", tmp_path / "c", "--out", tmp_path / "o")
    assert code == 2, out + err
    named = "torch.nn.modules.conv.F.torch.os.system" if kind.startswith("dotted") else "posix.system"
    assert named in err and "Traceback" not in err + out, err
    assert not marker.exists()
    assert not (tmp_path / "o").exists()


def test_an_onnx_source_given_a_pickle_is_refused_at_plan(tmp_path, cli, evil):
    files, marker = evil
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\nsource: {{kind: onnx, path: {files['dotted-pickle']}}}\ntargets: {{ort: {{}}}}\n")
    code, out, err = cli("plan", recipe, "--cache", tmp_path / "c")
    assert code == 2 and "not an ONNX model" in err, out + err
    assert not marker.exists()


@pytest.mark.slow
def test_tampered_cached_reference_is_refused_and_rebuilt_never_run(tmp_path, cli):
    """Whoever can write the cache swaps the export's reference.pt for a pickle that runs code: the next
    build must not run it (digest check before reading, and the safe loader), rebuild, and pass."""
    import json
    import shutil

    import torch
    from helpers.common import RECIPES

    cache, out, marker = tmp_path / "c", tmp_path / "o", tmp_path / "MARKER"
    args = [
        "build",
        RECIPES / "yolo11n.yaml",
        "export.imgsz=160",
        "gates.parity.min_score=0.0",
        "--cache",
        cache,
        "--out",
        out,
    ]
    code, o, e = cli(*args)
    assert code == 0, o + e
    refs = list(cache.glob("objects/*/*/reference.pt"))
    assert len(refs) == 1
    torch.save({"model": _Evil(marker), "args": {}}, refs[0])
    for meta in cache.glob("objects/*/*/meta.json"):  # the golden step must read reference.pt again
        if json.loads(meta.read_text()).get("kind") == "golden":
            shutil.rmtree(meta.parent)
    shutil.rmtree(out)
    code, o, e = cli(*args)
    assert not marker.exists(), "the tampered reference ran code"
    assert code == 0, o + e
    assert (out / "yolo11n" / "ort" / "model.onnx").is_file()


def test_architecture_yaml_with_code_in_activation_never_runs(tmp_path, cli):
    """Ultralytics `eval`s a model YAML's `activation:`; a user's YAML holding code is refused at plan,
    and the build path (restricted mode) would not evaluate it either."""
    import shutil

    from recipekit.sources.ultralytics.known import shipped

    marker = tmp_path / "MARKER"
    recipes = copy_recipes(tmp_path / "recipes")
    import importlib.util

    root = Path(importlib.util.find_spec("ultralytics").submodule_search_locations[0]) / "cfg" / "models" / "11"
    assert "yolo11.yaml" in shipped()
    evil = recipes / "evil11.yaml"
    shutil.copyfile(root / "yolo11.yaml", evil)
    evil.write_text(evil.read_text() + f"\nactivation: __import__('os').system('touch {marker}') or nn.SiLU()\n")
    code, out, err = cli("plan", recipes / "yolo11n.yaml", "source.model=evil11.yaml", "--cache", tmp_path / "c")
    assert code == 2 and "is not a torch.nn layer call" in err, out + err
    from ultralytics import YOLO

    with ultralytics_loading(), pytest.raises(TypeError):
        YOLO(str(evil))
    assert not marker.exists()
