"""A tiny ONNX model (Conv + Relu, seeded weights) and recipes around it: real builds in about a second."""

from __future__ import annotations

from pathlib import Path

RECIPE = """name: {name}
source: {{kind: onnx, path: tiny.onnx}}
input: {{samples: [ultralytics:bus.jpg]}}
export: {{opset: 17, imgsz: [64, 96]}}
targets: {targets}
gates: {gates}
"""
PARITY = "{parity: {atol: 1.0e-5, rtol: 1.0e-5}}"


def tiny_conv(path: Path, explicit_attrs: bool = True) -> Path:
    """x(N,3,64,96) -> Conv 3x3 (4 filters) -> Relu. Without `explicit_attrs` the Conv leaves its
    kernel_shape/dilations/strides to their defaults (valid ONNX that onnxruntime-web's JSEP Conv rejects)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    attrs = {"kernel_shape": [3, 3], "dilations": [1, 1], "strides": [1, 1]} if explicit_attrs else {}
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["y"], name="/conv", pads=[1, 1, 1, 1], **attrs),
        helper.make_node("Relu", ["y"], ["out"], name="/relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 64, 96])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4, 64, 96])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    return path


def tiny_recipe(folder: Path, name: str = "tiny", targets: str = "{ort: {}}", gates: str = PARITY) -> Path:
    """folder/<name>.yaml building folder/tiny.onnx (written if absent); `targets`, `gates`: YAML flow text."""
    if not (folder / "tiny.onnx").is_file():
        tiny_conv(folder / "tiny.onnx")
    path = folder / f"{name}.yaml"
    path.write_text(RECIPE.format(name=name, targets=targets, gates=gates))
    return path
