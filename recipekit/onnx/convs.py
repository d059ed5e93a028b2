"""Grouped convolutions that onnxruntime-web's WebGPU Conv computes wrongly (shared by the
split-grouped-conv fix and webgpu-lint).

Measured with onnxruntime-web 1.30.0 in headless Chromium (SwiftShader), one Conv at a time, JSEP
and the C++ WebGPU EP alike: grouped Convs (group > 1) whose output channels per group are not a
multiple of 4 (18, 10, 6) are off by up to 9 on random data, while groups of 12, 16, 36 or 72
channels and depthwise Convs agree with ONNX Runtime's CPU to 1e-5.
"""

from __future__ import annotations

from typing import Any

ALIGN = 4  # output channels per group the WebGPU grouped Conv handles


def unaligned_grouped_conv(node: Any, weights: dict[str, Any]) -> bool | None:
    """True: a grouped, non-depthwise Conv with output channels per group not a multiple of ALIGN.
    None: grouped, but its weights are not a constant (its channels are unknown here). `weights`:
    initializer name -> TensorProto."""
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    if node.op_type != "Conv" or group <= 1:
        return False
    w = weights.get(node.input[1])
    if w is None:
        return None
    per_group_out, per_group_in = w.dims[0] // group, w.dims[1]
    if per_group_out == 1 and per_group_in == 1:  # depthwise: a kernel of its own, computed right
        return False
    return per_group_out % ALIGN != 0
