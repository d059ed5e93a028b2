"""Models for the WebGPU tests: a tiny hand-made graph with case 1's defect, and yolo11n-pose exported
by Ultralytics with embedded NMS (random weights, seeded; no download)."""

from __future__ import annotations

import os
from pathlib import Path


def nonzero_pad(path: Path, hw: tuple[int, int] = (32, 32), opset: int = 17) -> Path:
    """x(1,3,H,W) -> Greater(0.5) -> NonZero -> Transpose -> Cast -> Pad(+1 row): (K+1, 4).

    A blank (all-zero) image gives K = 0, so Pad gets a zero-sized input and a non-empty output:
    exactly what JSEP's WebGPU kernels reject ("Program Pad has zero-sized tensor(s) ...").
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Greater", ["images", "half"], ["mask"], name="/Greater"),
        helper.make_node("NonZero", ["mask"], ["idx"], name="/NonZero"),
        helper.make_node("Transpose", ["idx"], ["rows"], name="/Transpose", perm=[1, 0]),
        helper.make_node("Cast", ["rows"], ["rows_f"], name="/Cast", to=TensorProto.FLOAT),
        helper.make_node("Pad", ["rows_f", "pads"], ["output0"], name="/Pad", mode="constant"),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array([0, 0, 1, 0], np.int64), "pads"),
    ]
    return _save(nodes, inits, path, hw, ["rows", 4], opset)


def yolo11n_pose(folder: Path, imgsz: int = 320, fixed_shape_nms: bool = False) -> Path:
    """yolo11n-pose from its YAML (torch seed 0, no weights), exported with nms=True, opset 17.

    With `fixed_shape_nms`, the fixed-shape-nms source fix is active during the export.
    """
    from contextlib import nullcontext

    os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false", YOLO_VERBOSE="false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(folder / "yolo-config"))  # tests/conftest.py sets the session's
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO("yolo11n-pose.yaml")
    model.model.pt_path = str(folder / "yolo11n-pose.pt")
    patch = nullcontext()
    if fixed_shape_nms:
        from recipekit.fixes.base import FixContext
        from recipekit.sources.ultralytics.fixed_shape_nms import FixedShapeNms

        patch = FixedShapeNms().patch(FixContext(recipe(imgsz, nms=True)))
    with patch:
        out = model.export(format="onnx", nms=True, imgsz=imgsz, opset=17, verbose=False)
    return Path(out)


def constant_detections(path: Path, hw: tuple[int, int] = (64, 64)) -> Path:
    """A detector stand-in: two fixed detections (x1, y1, x2, y2, score, class) plus one padding row.

    The output still depends on the input (+ 0 * mean) so no optimiser folds the graph away.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, w = hw
    dets = np.array(
        [
            [
                [0.1 * w, 0.2 * h, 0.5 * w, 0.9 * h, 0.9, 0],
                [0.55 * w, 0.1 * h, 0.95 * w, 0.6 * h, 0.6, 5],
                [0, 0, 0, 0, 0, 0],
            ]
        ],
        np.float32,
    )
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0, name="/ReduceMean"),
        helper.make_node("Mul", ["m", "zero"], ["z"], name="/Mul"),
        helper.make_node("Add", ["dets", "z"], ["output0"], name="/Add"),
    ]
    inits = [numpy_helper.from_array(dets, "dets"), numpy_helper.from_array(np.array(0, np.float32), "zero")]
    graph = helper.make_graph(
        nodes,
        "constant_dets",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 3, 6])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _declared(kind: dict) -> dict:
    from recipekit.recipe.outputs import declare

    return declare({"o": kind})["o"]


DETECTIONS = _declared({"kind": "detections", "box": [0, 4], "score": 4, "class": 5, "score_thr": 0.25})
POSE = _declared(
    {"kind": "detections", "box": [0, 4], "score": 4, "class": 5, "keypoints": [6, 17, 3], "score_thr": 0.25}
)
"""Post-NMS rows as Ultralytics' nms=True exports declare them (kept at score 0.25)."""


def recipe(
    imgsz: int | tuple[int, int],
    nms: bool = False,
    bundle: str = "jsep",
    samples: tuple[str, ...] = ("ultralytics:bus.jpg",),
):
    """A resolved Recipe built directly (no loader needed) for a webgpu target."""
    from recipekit.recipe.schema import Export, Input, Recipe, TargetEntry
    from recipekit.sources.base import SourceConfig
    from recipekit.targets.webgpu.target import WebGpuConfig

    return Recipe(
        name="webgpu-test",
        source=SourceConfig(kind="onnx"),
        input=Input(samples=list(samples)),
        export=Export(imgsz=imgsz, nms={} if nms else None),
        targets={"webgpu": TargetEntry(config=WebGpuConfig(bundle=bundle))},
        base_dir=str(Path.cwd()),
    )


def golden_for(model: Path, rec) -> object:
    """Golden cases from the recipe's sample image; outputs from ORT CPU (the browser gate reads inputs only)."""
    from recipekit.onnx.golden import Case, Golden
    from recipekit.onnx.preprocess import image_tensor, resolve_sample
    from recipekit.onnx.runtime import OrtRunner

    hw = tuple(rec.export.imgsz)
    x = image_tensor(resolve_sample(rec.input.samples[0], Path(rec.base_dir)), hw, rec.input.preprocess)
    runner = OrtRunner(model)
    return Golden(runner.output_names, [Case(hw, rec.input.samples[0], x, runner.run_one(x))])


def gate_context(model: Path, rec, bundle: str = "jsep", kinds: dict | None = None):
    from recipekit.gates.base import GateContext
    from recipekit.onnx.runtime import OrtRunner

    golden = golden_for(model, rec)
    return GateContext(
        recipe=rec,
        target="webgpu",
        artifact_dir=model.parent,
        artifact=model.name,
        onnx_path=model,
        runner=lambda: OrtRunner(model),
        golden=lambda: golden,
        target_manifest={"onnxruntime_web": {"bundle": bundle}},
        output_kinds=_declare_all(kinds),
    )


def _declare_all(kinds: dict | None) -> dict:
    from recipekit.recipe.outputs import declare

    return declare(kinds) if kinds else {}


def _save(nodes, inits, path: Path, hw: tuple[int, int], out_shape, opset: int = 17, out_name: str = "output0") -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *hw])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="recipekit-tests")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def conv_chain(path: Path, layers: list[tuple[int, int]], hw: tuple[int, int] = (32, 32)) -> Path:
    """images (1, 3, H, W) through 3x3 Convs given as (output channels, group), with biases, named /conv<i>."""
    import numpy as np
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, x, c = [], [], "images", 3
    for i, (out, group) in enumerate(layers):
        w = numpy_helper.from_array((rng.standard_normal((out, c // group, 3, 3)) * 0.2).astype(np.float32), f"w{i}")
        b = numpy_helper.from_array(rng.standard_normal(out).astype(np.float32), f"b{i}")
        inits += [w, b]
        y = "output0" if i == len(layers) - 1 else f"y{i}"
        attrs = {"group": group, "pads": [1] * 4, "kernel_shape": [3, 3], "strides": [1, 1], "dilations": [1, 1]}
        nodes.append(helper.make_node("Conv", [x, w.name, b.name], [y], name=f"/conv{i}", **attrs))
        x, c = y, out
    return _save(nodes, inits, path, hw, [1, c, *hw])


def concat_of(path: Path, parts: int, hw: tuple[int, int] = (32, 32)) -> Path:
    """images -> `parts` separate Mul(images, k) -> one Concat of all of them (axis 1), named /concat."""
    import numpy as np
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(np.array(k + 1.0, np.float32), f"k{k}") for k in range(parts)]
    nodes = [helper.make_node("Mul", ["images", f"k{k}"], [f"m{k}"], name=f"/mul{k}") for k in range(parts)]
    nodes.append(helper.make_node("Concat", [f"m{k}" for k in range(parts)], ["output0"], name="/concat", axis=1))
    return _save(nodes, inits, path, hw, [1, 3 * parts, *hw])


def rows_into_gemm(
    path: Path, trans_a: int = 0, shape_path: bool = False, hw: tuple[int, int] = (32, 32), then: str = ""
) -> Path:
    """images -> Greater(0.5) -> NonZero -> Transpose -> Cast: (K, 4) rows -> Gemm(W 4x6, b) (/fc/Gemm) -> (K, 6);
    K = 0 on a blank image.

    `shape_path`: the rows are rebuilt as ConstantOfShape(Shape(rows)) + rows, as torchvision's
    MultiScaleRoIAlign does, so emptiness travels through a Shape (static analysis loses it).
    `then`: "Softmax" (over the 6 columns, as R-CNN box heads score classes) or "ReduceMax" (row-wise)
    after the Gemm, named /head."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Greater", ["images", "half"], ["mask"], name="/Greater"),
        helper.make_node("NonZero", ["mask"], ["idx"], name="/NonZero"),
        helper.make_node("Transpose", ["idx"], ["rows_i"], name="/Transpose", perm=[1, 0]),
        helper.make_node("Cast", ["rows_i"], ["rows"], name="/Cast", to=TensorProto.FLOAT),
    ]
    a = "rows"
    if shape_path:
        nodes += [
            helper.make_node("Shape", ["rows"], ["shape"], name="/Shape"),
            helper.make_node("ConstantOfShape", ["shape"], ["zeros"], name="/ConstantOfShape"),
            helper.make_node("ScatterElements", ["zeros", "rows_i", "rows"], ["scattered"], name="/Scatter"),
        ]
        a = "scattered"
    if trans_a:
        nodes.append(helper.make_node("Transpose", [a], ["rows_t"], name="/T", perm=[1, 0]))
        a = "rows_t"
    gemm_out = "logits" if then else "output0"
    nodes.append(helper.make_node("Gemm", [a, "w", "b"], [gemm_out], name="/fc/Gemm", transA=trans_a, transB=1))
    if then == "Softmax":
        nodes.append(helper.make_node("Softmax", ["logits"], ["output0"], name="/head", axis=-1))
    elif then == "ReduceMax":
        nodes.append(helper.make_node("ReduceMax", ["logits"], ["output0"], name="/head", axes=[1], keepdims=1))
    inits = [
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(rng.standard_normal((6, 4)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "b"),
    ]
    return _save(nodes, inits, path, hw, ["rows", 1 if then == "ReduceMax" else 6])


def resize_empty_roi(path: Path, hw: tuple[int, int] = (32, 32)) -> Path:
    """images -> Conv -> Resize x2 (nearest) whose roi is an empty constant and scales a Constant node, as
    PyTorch exports F.interpolate: the optional roi is given, empty by design (issue 25's false alarm)."""
    import numpy as np
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["c"], name="/conv", pads=[1] * 4, kernel_shape=[3, 3]),
        helper.make_node("Constant", [], ["roi"], name="/roi", value=numpy_helper.from_array(np.zeros(0, np.float32))),
        helper.make_node(
            "Constant",
            [],
            ["scales"],
            name="/scales",
            value=numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32)),
        ),
        helper.make_node("Resize", ["c", "roi", "scales"], ["output0"], name="/resize", mode="nearest"),
    ]
    return _save(nodes, [w], path, hw, [1, 4, 2 * hw[0], 2 * hw[1]])


def split_into(path: Path, parts: int, hw: tuple[int, int] = (32, 32)) -> Path:
    """images -> Tile to 3*parts channels -> one Split into `parts` (/split) -> Concat back (axis 1)."""
    import numpy as np
    from onnx import helper, numpy_helper

    reps = numpy_helper.from_array(np.array([1, parts, 1, 1], np.int64), "reps")
    nodes = [
        helper.make_node("Tile", ["images", "reps"], ["tiled"], name="/tile"),
        helper.make_node("Split", ["tiled"], [f"s{k}" for k in range(parts)], name="/split", axis=1, num_outputs=parts),
        helper.make_node("Concat", [f"s{k}" for k in range(parts)], ["output0"], name="/concat", axis=1),
    ]
    return _save(nodes, [reps], path, hw, [1, 3 * parts, *hw], opset=18)
