"""Float nodes cut out of a QDQ model: one quantization of the whole graph serves every choice of float nodes.

ONNX Runtime's quantizer takes seconds per call (it rewrites and saves the whole graph), and the
sensitivity pass and the search ask for dozens of float-node sets. The whole graph is quantized
once; a node kept float then reads what it reads in the fp32 model: its weights and bias as the fp32
model's float initializers, each activation as the producer's float output, or, where the producer
stays quantized, that producer's dequantized output (in the fused model that tensor is int8 either
way). Q/DQ pairs nothing reads any more are dropped. The result is what the candidate is scored as
and what the artifact is: the same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

QDQ = ("QuantizeLinear", "DequantizeLinear")


class CutError(ValueError):
    """The QDQ graph does not carry a tensor the fp32 node reads (its producer was renamed)."""


def cut(qdq: onnx.ModelProto, fp32: onnx.ModelProto, floated: set[str], quantized: set[str]) -> onnx.ModelProto:
    """A copy of `qdq` with the nodes `floated` computing in float; `quantized`: the nodes that stay
    quantized (an activation they produce is read dequantized)."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(qdq)
    g, ref = model.graph, {n.name: n for n in fp32.graph.node}
    producer = {o: n.name for n in fp32.graph.node for o in n.output}
    weights = {i.name: i for i in fp32.graph.initializer}
    produced = {o for n in g.node for o in n.output}
    for node in g.node:
        if node.name not in floated or node.name not in ref:
            continue
        inputs = []
        for k, was in enumerate(ref[node.name].input):
            if was in weights:
                inputs.append(_float_weight(g, weights[was], produced))
            elif producer.get(was) in quantized and k < len(node.input):
                inputs.append(node.input[k])  # a quantized producer's output: int8 in the fused model
            else:
                inputs.append(was)
        del node.input[:]
        node.input.extend(inputs)
    _drop_unread(g)
    _check(g)
    return model


def _float_weight(g: onnx.GraphProto, init: onnx.TensorProto, produced: set[str]) -> str:
    """The fp32 initializer in `g` (renamed where a DequantizeLinear output took its name, as biases' do)."""
    name = f"{init.name}_float" if init.name in produced else init.name
    if not any(i.name == name for i in g.initializer):
        copy = g.initializer.add()
        copy.CopyFrom(init)
        copy.name = name
    return name


def _drop_unread(g: onnx.GraphProto) -> None:
    """Q/DQ nodes whose outputs nothing reads, then initializers nothing reads."""
    outputs = {o.name for o in g.output}
    while True:
        read = {i for n in g.node for i in n.input} | outputs
        dead = [n for n in g.node if n.op_type in QDQ and not any(o in read for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    read = {i for n in g.node for i in n.input} | outputs
    for init in [i for i in g.initializer if i.name not in read]:
        g.initializer.remove(init)


def _check(g: onnx.GraphProto) -> None:
    known = {i.name for i in g.input} | {i.name for i in g.initializer} | {""}
    known |= {o for n in g.node for o in n.output}
    missing = sorted({i for n in g.node for i in n.input} - known)
    if missing:
        raise CutError(f"the QDQ graph has no tensor {missing[:3]}")
