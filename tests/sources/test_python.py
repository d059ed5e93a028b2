"""The python source with factories that read their own files: every file declared (`source.files`),
hashed into the export key, read through the safe loader; an undeclared read is refused (exit 2,
naming the path); the manifest says which weights were loaded. Trained weights a PyPI package ships
(facenet-pytorch's MTCNN P/R/O-Net, PNet at dynamic H/W) build and pass parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.common import manifest, step_lines

TINY = """name: own
source:
  kind: python
  factory: helpers.python_models:{factory}
  args: {{path: {path}}}
  files: {files}
input: {{preprocess: {{resize: stretch}}, samples: [ultralytics:bus.jpg]}}
export: {{opset: 17, imgsz: [32, 32]}}
targets: {{ort: {{}}}}
gates: {{parity: {{}}}}
"""


def _recipe(tmp_path: Path, factory: str, path: Path, files: str = "[]") -> Path:
    recipe = tmp_path / "own.yaml"
    recipe.write_text(TINY.format(factory=factory, path=path, files=files))
    return recipe


def _run(cli, tmp_path: Path, recipe: Path, *extra: str) -> tuple[int, str, str]:
    return cli("build", recipe, *extra, "--cache", tmp_path / "c", "--out", tmp_path / "o")


def test_a_factory_reading_an_undeclared_file_is_refused_naming_it(tmp_path, cli):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n")
    code, out, err = _run(cli, tmp_path, _recipe(tmp_path, "reads_a_file", labels))
    assert code == 2, out + err
    assert f"source.files: helpers.python_models:reads_a_file read {labels}, which the recipe does not declare" in (
        out + err
    )
    assert "Traceback" not in out + err and not (tmp_path / "o").exists()
    code, out, err = _run(cli, tmp_path, _recipe(tmp_path, "reads_a_file", labels, "[labels.txt]"))
    assert code == 0, out + err  # declared: hashed, read, built
    assert manifest(tmp_path / "o", "own", "ort")["source"]["notes"]["weights_loaded"] == {
        "labels.txt": "opened by the factory"
    }


def _weights(path: Path, seed: int) -> None:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    torch.save(model.state_dict(), path)


def test_a_declared_weights_file_is_hashed_read_safely_and_a_change_rebuilds(tmp_path, cli):
    """The factory calls torch.load(weights_only=False) on its file: recipekit reads it with the safe
    loader; the manifest says so (init: weights); another file rebuilds export and golden."""
    weights = tmp_path / "w.pt"
    _weights(weights, 0)
    recipe = _recipe(tmp_path, "loads_own_weights", weights, "[w.pt]")
    code, out, err = _run(cli, tmp_path, recipe)
    assert code == 0, out + err
    source = manifest(tmp_path / "o", "own", "ort")["source"]
    assert source["init"] == "weights"
    assert source["notes"]["weights_loaded"] == {"w.pt": "torch.load by the factory, read by recipekit's safe loader"}
    first = (tmp_path / "o" / "own" / "ort" / "model.onnx").read_bytes()
    code, out, _ = _run(cli, tmp_path, recipe)
    assert code == 0 and step_lines(out)["own:export:python"] == "cached", out
    _weights(weights, 1)
    code, out, err = _run(cli, tmp_path, recipe)
    assert code == 0, out + err
    assert step_lines(out)["own:export:python"] == "ran" and step_lines(out)["own:golden:python"] == "ran", out
    assert (tmp_path / "o" / "own" / "ort" / "model.onnx").read_bytes() != first


def test_a_declared_file_asking_for_code_is_refused_at_plan(tmp_path, cli):
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'MARKER'}",))

    weights = tmp_path / "w.pt"
    weights.write_bytes(pickle.dumps({"x": Evil()}))
    code, out, err = cli("plan", _recipe(tmp_path, "loads_own_weights", weights, "[w.pt]"), "--cache", tmp_path / "c")
    assert code == 2 and "source.weights: w.pt asks to load posix.system" in err, out + err
    assert not (tmp_path / "MARKER").exists()


MTCNN = """name: mtcnn-{net}
source:
  kind: python
  factory: facenet_pytorch.models.mtcnn:{Net}
  args: {{pretrained: true}}
  files: [facenet_pytorch:data/{net}.pt]
  outputs: {outputs}
input:
  # facenet-pytorch's MTCNN: (x - 127.5) / 128 on RGB
  preprocess: {{resize: stretch, scale: 0.0078125, mean: [0.99609375, 0.99609375, 0.99609375], std: [1, 1, 1]}}
  samples: [ultralytics:zidane.jpg]
  shapes: {shapes}
export: {{opset: 17, imgsz: {imgsz}, dynamic: {{hw: {dynamic}}}}}
targets: {{ort: {{}}}}
gates: {{parity: {{atol: 1.0e-4, rtol: 1.0e-3}}}}  # parity runs every declared shape
"""
NETS = {
    "pnet": ([[48, 64], [120, 160]], [96, 128], "true"),  # a fully convolutional net over the image pyramid
    "rnet": ([], [24, 24], "false"),
    "onet": ([], [48, 48], "false"),
}
OUTPUTS = {"pnet": "[boxes, probs]", "rnet": "[boxes, probs]", "onet": "[boxes, landmarks, probs]"}


@pytest.mark.slow
@pytest.mark.parametrize("net", sorted(NETS))
def test_mtcnn_trained_weights_from_facenet_pytorch(tmp_path, cli, net):
    """PNet(pretrained=True) loads data/pnet.pt itself: declared, it is read by the safe loader and the
    exported graph holds those trained weights (not a random init), PNet with dynamic H and W."""
    pytest.importorskip("facenet_pytorch")
    import onnx
    import torch
    from onnx import numpy_helper

    from recipekit.onnx.preprocess import resolve_sample

    shapes, imgsz, dynamic = NETS[net]
    recipe = tmp_path / f"{net}.yaml"
    text = MTCNN.format(
        net=net, Net=net[0].upper() + "Net", shapes=shapes, imgsz=imgsz, dynamic=dynamic, outputs=OUTPUTS[net]
    )
    recipe.write_text(text)
    code, out, err = _run(cli, tmp_path, recipe)
    assert code == 0, out + err
    m = manifest(tmp_path / "o", f"mtcnn-{net}", "ort")
    assert m["source"]["init"] == "weights" and m["gates"]["parity"]["passed"]
    assert list(m["source"]["notes"]["weights_loaded"]) == [f"facenet_pytorch:data/{net}.pt"]
    graph = onnx.load(str(tmp_path / "o" / f"mtcnn-{net}" / "ort" / "model.onnx"))
    trained = torch.load(resolve_sample(f"facenet_pytorch:data/{net}.pt", Path(".")), weights_only=True)
    inits = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    conv1 = next(v for v in inits.values() if v.shape == tuple(trained["conv1.weight"].shape))
    assert np.allclose(conv1, trained["conv1.weight"].numpy())
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims[2:] == (["height", "width"] if net == "pnet" else imgsz)


def test_pretrained_factory_without_its_file_declared_is_refused(tmp_path, cli):
    pytest.importorskip("facenet_pytorch")
    recipe = tmp_path / "pnet.yaml"
    text = MTCNN.format(net="pnet", Net="PNet", shapes=[], imgsz=[24, 24], dynamic="false", outputs="[boxes, probs]")
    recipe.write_text(text.replace("files: [facenet_pytorch:data/pnet.pt]", "files: []"))
    code, out, err = _run(cli, tmp_path, recipe)
    assert code == 2, out + err
    assert "source.files: facenet_pytorch.models.mtcnn:PNet read " in out + err and "data/pnet.pt" in out + err


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_the_refusal_through_the_console_command(tmp_path, jobs):
    """`recipekit build -j N` in a subprocess (warm workers run the factory): exit 2, one clear line."""
    import os
    import subprocess
    import sys

    from helpers.common import ROOT

    labels = tmp_path / "labels.txt"
    labels.write_text("cat\n")
    recipe = _recipe(tmp_path, "reads_a_file", labels)
    exe = Path(sys.executable).with_name("recipekit")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    cmd = [str(exe), "build", str(recipe), "-j", jobs, "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "o")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"read {labels}, which the recipe does not declare" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
