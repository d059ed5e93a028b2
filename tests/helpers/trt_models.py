"""Real Ultralytics exports, PyTorch golden cases and recipes for the TensorRT tests (no weights downloaded).

Each export is made once per test session (cached by arguments) in a temporary folder: architecture
YAML + torch.manual_seed(0), Ultralytics' own ONNX exporter, batch-dynamic with batch 4.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(tempfile.mkdtemp(prefix="recipekit-trt-tests-"))
atexit.register(shutil.rmtree, ROOT, True)
SAMPLES = ["ultralytics:bus.jpg", "ultralytics:zidane.jpg"]


def _env() -> None:
    os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(ROOT / "yolo-config"))


def _model(cfg: str) -> Any:
    _env()
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    return YOLO(cfg)


@cache
def export(cfg: str, imgsz: int) -> Path:
    """model.onnx of `cfg` with a dynamic batch axis only (H, W pinned to imgsz), opset 17.

    Ultralytics' dynamic=True also makes H and W dynamic; field note 3 is about a dynamic batch
    with a fixed image size, so the input's H and W are pinned afterwards (graph untouched).
    """
    import onnx

    model = _model(cfg)
    folder = Path(tempfile.mkdtemp(dir=ROOT))
    model.model.pt_path = str(folder / cfg.replace(".yaml", ".pt"))
    path = Path(model.export(format="onnx", dynamic=True, batch=4, imgsz=imgsz, opset=17))
    graph = onnx.load(str(path))
    for axis in (2, 3):
        graph.graph.input[0].type.tensor_type.shape.dim[axis].dim_value = imgsz
    pinned = folder / "model.onnx"
    onnx.save(graph, str(pinned))
    return pinned


def fold_reshapes(src: Path) -> Path:
    """Reshape targets computed at run time -> constants (batch entry 0 = copy), as the
    static-reshape-channels fix promises; used only while that fix is not in recipekit.fixes."""
    import numpy as np
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(str(src))
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]
    inferred = shape_inference.infer_shapes(bare, data_prop=True)
    dims = {
        v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info
    }
    consts = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        out, src_dims = dims.get(node.output[0]), dims.get(node.input[0])
        if node.op_type != "Reshape" or node.input[1] in consts or not out or not src_dims:
            continue
        target = [
            0 if k == 0 and d == src_dims[0] else (d if isinstance(d, int) and d > 0 else -1) for k, d in enumerate(out)
        ]
        if target.count(-1) <= 1:
            name = node.output[0] + "_static_shape"
            model.graph.initializer.append(numpy_helper.from_array(np.array(target, np.int64), name))
            node.input[1] = name
    dst = src.with_name(src.stem + "-folded.onnx")
    onnx.save(model, str(dst))
    return dst


def fixed(src: Path, rec: Any) -> tuple[Path, str]:
    """`src` through the static-reshape-channels fix when recipekit has it, else `fold_reshapes`."""
    try:
        from recipekit.fixes import FIXES

        fix_cls = FIXES.get("static-reshape-channels")
    except (ImportError, KeyError):
        return fold_reshapes(src), "test fold (static-reshape-channels not in recipekit yet)"
    import onnx

    from recipekit.fixes.base import FixContext

    fix = fix_cls()
    model = fix.apply(onnx.load(str(src)), FixContext(rec))
    dst = src.with_name(src.stem + "-src.onnx")
    onnx.save(model, str(dst))
    return dst, "static-reshape-channels"


@cache
def golden(cfg: str, imgsz: int) -> Any:
    """Batch-1 golden cases at `imgsz` for both samples: the PyTorch model's own outputs."""
    import torch

    from recipekit.onnx.golden import Case, Golden
    from recipekit.onnx.preprocess import image_tensor, resolve_sample
    from recipekit.recipe.schema import Preprocess

    net = _model(cfg).model.eval()
    cases = []
    for spec in SAMPLES:
        x = image_tensor(resolve_sample(spec, ROOT), (imgsz, imgsz), Preprocess())
        with torch.no_grad():
            y = net(torch.from_numpy(x))
        outs = y[0] if isinstance(y[0], (list, tuple)) else [y[0]]
        cases.append(Case((imgsz, imgsz), spec, x, [o.numpy() for o in outs]))
    names = ["output0", "output1"][: len(cases[0].outputs)]
    return Golden(names, cases)


def recipe(
    target: str,
    imgsz: int,
    *,
    batch: tuple[int, int, int] = (1, 2, 4),
    target_config: Any = None,
    gates: dict[str, Any] | None = None,
    hw: bool = False,
) -> Any:
    """A Recipe for one TensorRT target, built directly (the source plugin is not exercised here)."""
    from recipekit.recipe.schema import Batch, Dynamic, Export, Input, Recipe, TargetEntry
    from recipekit.sources.base import SourceConfig
    from recipekit.targets import TARGETS

    cls = TARGETS.get(target)
    return Recipe(
        name="t",
        source=SourceConfig(kind="ultralytics"),
        input=Input(samples=SAMPLES),
        export=Export(
            imgsz=(imgsz, imgsz), batch=Batch(min=batch[0], opt=batch[1], max=batch[2]), dynamic=Dynamic(hw=hw)
        ),
        targets={target: TargetEntry(config=target_config or cls.Config())},
        gates=gates or {},
        base_dir=str(ROOT),
    )


def tiny_graph(
    folder: Path,
    nodes: list[Any],
    inputs: list[Any],
    outputs: list[Any],
    inits: list[Any] | None = None,
    name: str = "tiny",
    domains: tuple[str, ...] = (),
) -> Path:
    """A small ONNX file written as is (opset 17), for lint cases no exporter produces on purpose."""
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits or [])
    opsets = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, 1) for d in domains)]
    model = helper.make_model(graph, opset_imports=opsets)
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def grouped_conv(folder: Path, *, computed_shape: bool, batch: int | str = "N") -> Path:
    """X (N,8,4,4) -> Reshape -> depthwise Conv (group 8): field note 3 in eleven nodes.

    computed_shape: the Reshape target is Concat(Shape(X)[0], 8, 4, 4), as a traced `x.view(B, C, H, W)`
    exports; else a constant [0, 8, 4, 4] (what static-reshape-channels writes).
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [batch, 8, 4, 4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [batch, 8, 4, 4])
    inits = [
        numpy_helper.from_array(np.ones((8, 1, 3, 3), np.float32), "W"),
        numpy_helper.from_array(np.array([8, 4, 4], np.int64), "chw"),
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([0, 8, 4, 4], np.int64), "static_shape"),
    ]
    conv = helper.make_node("Conv", ["R", "W"], ["Y"], name="pe/conv/Conv", group=8, pads=[1, 1, 1, 1])
    if not computed_shape:
        nodes = [helper.make_node("Reshape", ["X", "static_shape"], ["R"], name="attn/Reshape"), conv]
    else:
        nodes = [
            helper.make_node("Shape", ["X"], ["s"], name="attn/Shape"),
            helper.make_node("Gather", ["s", "zero"], ["b"], name="attn/Gather", axis=0),
            helper.make_node("Concat", ["b", "chw"], ["shape"], name="attn/Concat", axis=0),
            helper.make_node("Reshape", ["X", "shape"], ["R"], name="attn/Reshape"),
            conv,
        ]
    return tiny_graph(folder, nodes, [x], [y], inits, name=f"grouped-conv-{computed_shape}-{batch}")
