"""ONNX files built here for the cache tests: a small conv net whose weights live in an external
data file (`<name>.data`), the layout torch's exporter and Optimum use for big models."""

from __future__ import annotations

from pathlib import Path


def external_data_model(path: Path, hw: tuple[int, int] = (64, 96), seed: int = 0) -> Path:
    """`path` (graph only) + `path.data` (every weight), opset 17, dynamic batch, input `images`."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.normal(0, 0.2, size=(8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.2, size=(4, 8, 3, 3)).astype(np.float32), "w2")
    conv = {"pads": [1, 1, 1, 1], "strides": [1, 1], "dilations": [1, 1], "kernel_shape": [3, 3]}  # JSEP wants them
    nodes = [
        helper.make_node("Conv", ["images", "w1"], ["a"], **conv),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Conv", ["b", "w2"], ["out"], **conv),
    ]
    graph = helper.make_graph(
        nodes,
        "external",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, *hw])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4, *hw])],
        [w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.save(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=path.name + ".data",
        size_threshold=0,
    )
    assert (path.parent / (path.name + ".data")).stat().st_size > 1000
    return path
