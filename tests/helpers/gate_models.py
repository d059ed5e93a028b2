"""Real models and hand-built GateContexts for the gate tests (no engine needed).

Ultralytics exports are cached per process (keyed by their arguments), so test files that need the
same export share it. Tiny ONNX graphs are built with onnx.helper.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from recipekit.core.plugin import Strict
from recipekit.gates.base import GateContext
from recipekit.onnx.golden import Case, Golden
from recipekit.recipe.outputs import declare
from recipekit.recipe.schema import Export, Input, Recipe, TargetEntry

WORK = Path(tempfile.mkdtemp(prefix="rk-gates-"))
atexit.register(shutil.rmtree, WORK, True)  # ~220 MB of exports a test session would otherwise leave in $TMPDIR
SAMPLES = ("ultralytics:bus.jpg", "ultralytics:zidane.jpg")


class _Source(Strict):
    kind: str = "ultralytics"


def recipe(
    imgsz=(256, 256), shapes=(), batch=(1, 1, 4), dynamic_hw=False, nms=None, dynamic_batch=None, **inp
) -> Recipe:
    b = dict(zip(("min", "opt", "max"), batch, strict=True))
    export = Export(imgsz=imgsz, batch=b, dynamic={"batch": dynamic_batch, "hw": dynamic_hw}, nms=nms)
    return Recipe(
        name="t",
        source=_Source(),
        input=Input(shapes=list(shapes), **inp),
        export=export,
        targets={"ort": TargetEntry(config=Strict())},
    )


def context(rec: Recipe, onnx_path: Path, golden: Golden | None, kinds: dict | None = None) -> GateContext:
    from recipekit.onnx.runtime import OrtRunner

    return GateContext(
        rec,
        "ort",
        onnx_path.parent,
        onnx_path.name,
        onnx_path,
        lambda: OrtRunner(onnx_path),
        lambda: golden,
        {},
        declare(kinds) if kinds else {},
    )


def sample_inputs(rec: Recipe, shape: tuple[int, int]) -> list[tuple[str, np.ndarray]]:
    from recipekit.onnx.preprocess import image_tensor, resolve_sample

    return [(s.split(":")[-1], image_tensor(resolve_sample(s, WORK), shape, rec.input.preprocess)) for s in SAMPLES]


def golden_from(forward, rec: Recipe, names: list[str], probes: bool = False) -> Golden:
    """Golden cases: the two sample images at every declared shape, outputs from `forward` (numpy in/out);
    `probes`: also the golden step's blank-ish probes (for empty-input)."""
    from recipekit.onnx.golden import probe_inputs

    cases = [
        Case(tuple(shape), sample, x, forward(x)) for shape in rec.shapes() for sample, x in sample_inputs(rec, shape)
    ]
    extra = [
        Case(tuple(shape), name, x, forward(x))
        for shape in (rec.shapes() if probes else [])
        for name, x in probe_inputs(shape, rec.input.preprocess)
    ]
    return Golden(names, cases, {}, extra)


def _ultralytics_env() -> None:
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(WORK / "yolo-config"))


@functools.cache
def yolo_export(
    cfg: str, nms: bool = False, imgsz: int = 256, batch: int = 4, detections: bool = False, fix: bool = False
):
    """(onnx path, torch forward (numpy in, numpy list out), output names) of a seeded random-init export.

    `detections`: re-draw the class-score layers so a random model finds objects (NMS keeps rows).
    `fix`: export (and run the reference) with the fixed-shape-nms source fix active.
    """
    _ultralytics_env()
    import torch
    from ultralytics import YOLO
    from ultralytics.engine.exporter import Exporter, NMSModel

    torch.manual_seed(0)
    model = YOLO(cfg).model
    folder = WORK / f"{Path(cfg).stem}-{nms}-{imgsz}-{batch}-{detections}-{fix}"
    folder.mkdir()
    model.pt_path = str(folder / "model.pt")
    if detections:
        _calibrate(model)
    patch = _fix_patch(nms) if fix else _null()
    with patch:
        exporter = Exporter(overrides=dict(format="onnx", dynamic=True, batch=batch, imgsz=imgsz, opset=17, nms=nms))
        path = Path(exporter(model=model))
    net = exporter.model.eval()
    ref = NMSModel(net, exporter.args) if nms else net

    def forward(x: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad(), _fix_patch(nms) if fix else _null():
            out = ref(torch.from_numpy(x))
        out = out if isinstance(out, (tuple, list)) else [out]
        return [o.numpy() for o in out]

    import onnx

    names = [o.name for o in onnx.load(str(path), load_external_data=False).graph.output]
    return path, forward, names


POSE_NMS = {"output0": {"kind": "detections", "box": [0, 4], "score": 4, "class": 5, "keypoints": [6, 17, 3],
                        "score_thr": 0.25}}  # fmt: skip
"""yolo11n-pose's nms=True rows, as the Ultralytics source declares them."""

TV_KINDS = {
    "boxes": {"kind": "detections", "group": "detections", "field": "box", "batched": False},
    "scores": {"kind": "detections", "group": "detections", "field": "score", "batched": False},
    "labels": {"kind": "detections", "group": "detections", "field": "class", "batched": False},
}
"""torchvision's three outputs as one detection list, in recipekit.onnx.compare's schema."""


@functools.cache
def faster_rcnn_export():
    """(recipe, raw ONNX, ONNX after zero-safe-reshape, golden) of a real torchvision Faster R-CNN
    export (synthetic weights, traced on bus.jpg at 320x320); the recipe is built here."""
    import onnx

    from recipekit.fixes.base import FixContext
    from recipekit.fixes.zero_safe_reshape import ZeroSafeReshape
    from recipekit.recipe.schema import Preprocess
    from recipekit.sources.torchvision.source import TorchvisionConfig, TorchvisionSource

    pre = Preprocess(scale=1 / 255, mean=(0, 0, 0), std=(1, 1, 1), color="rgb", layout="nchw")
    source = TorchvisionConfig(builder="fasterrcnn_mobilenet_v3_large_320_fpn", init="synthetic", box_score_thresh=0.25)
    rec = Recipe(
        name="frcnn",
        source=source,
        input=Input(preprocess=pre, samples=["ultralytics:bus.jpg"]),
        export=Export(imgsz=(320, 320)),
        targets={"ort": TargetEntry(config=Strict())},
        base_dir=str(WORK),
    )
    out = WORK / "frcnn"
    out.mkdir()
    info = TorchvisionSource(rec.source).export(rec, out, [])
    fixed = ZeroSafeReshape().apply(onnx.load(str(out / "model.onnx")), FixContext(rec))
    onnx.save(fixed, str(out / "fixed.onnx"))
    with TorchvisionSource(rec.source).reference(rec, out, []) as forward:
        golden = golden_from(forward, rec, info.outputs, probes=True)
    return rec, out / "model.onnx", out / "fixed.onnx", golden


def _calibrate(model) -> None:
    """Give a random-init model live activations and spread scores, as a trained one has: BatchNorm
    statistics from the sample images (activations otherwise vanish through ~100 random layers, so
    every score ties and NMS order is arbitrary), and class biases at 0 so objects pass conf=0.25."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    for seq in model.model[-1].cv3:
        torch.nn.init.normal_(seq[-1].weight, std=0.01)
        torch.nn.init.constant_(seq[-1].bias, -1.0)
    images = np.concatenate([x for _, x in sample_inputs(recipe(), (256, 256))])
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(images))
    model.eval()


def _fix_patch(nms: bool):
    from recipekit.fixes.base import FixContext
    from recipekit.sources.ultralytics.fixed_shape_nms import FixedShapeNms

    return FixedShapeNms().patch(FixContext(recipe(nms=True if nms else None)))


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def save_graph(nodes, inputs, outputs, name: str, initializers=()) -> Path:
    """A tiny real ONNX model (opset 17) written under WORK."""
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, name, inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = WORK / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def tensor_info(name: str, dims: list) -> Any:
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)
