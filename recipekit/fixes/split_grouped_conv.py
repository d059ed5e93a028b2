"""split-grouped-conv: a grouped Conv whose output channels per group are not a multiple of 4 becomes
one Conv per group (Split -> Convs -> Concat).

onnxruntime-web's WebGPU Conv (JSEP and the C++ WebGPU EP, 1.30.0) computes such grouped
convolutions wrongly: RTMO's pose branch (144 channels in 8 groups of 18) is off by up to 7 on
SwiftShader while ONNX Runtime's CPU is exact; groups of 10 or 6 channels fail alike, groups of 12,
16, 36 or 72 and depthwise convolutions are right (measured one Conv at a time, headless Chromium).
Each group as its own Conv (group=1) is the same arithmetic, which every backend computes right.
Only Convs with constant weights are rewritten; the others are reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from recipekit.fixes.base import Check, FixContext, Guarantee, OnnxFix
from recipekit.onnx.convs import unaligned_grouped_conv

if TYPE_CHECKING:
    import onnx


class SplitGroupedConv(OnnxFix):
    """One Conv per group for grouped Convs with unaligned output channels per group."""

    name: ClassVar[str] = "split-grouped-conv"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = "grouped Convs with output channels per group not a multiple of 4 split per group (WebGPU)"

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        todo, left = _find(model)
        if todo:
            names = ", ".join(n.name or n.output[0] for n in todo[:5])
            return Check("applies", f"{len(todo)} grouped Conv(s) with unaligned channels per group: {names}")
        return Check("not-needed", _left(left) or "no grouped Conv has unaligned output channels per group")

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        import onnx

        out = onnx.ModelProto()
        out.CopyFrom(model)
        todo, _ = _find(out)
        opset = next((o.version for o in out.opset_import if o.domain in ("", "ai.onnx")), 13)
        nodes = list(out.graph.node)
        for node in todo:
            at = nodes.index(node)
            nodes[at : at + 1] = _split(out, node, opset)
        del out.graph.node[:]
        out.graph.node.extend(nodes)
        used = {i for n in out.graph.node for i in n.input}
        kept = [i for i in out.graph.initializer if i.name in used or i.name in {g.name for g in out.graph.output}]
        del out.graph.initializer[:]
        out.graph.initializer.extend(kept)
        return out

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        todo, left = _find(model)
        if todo:
            names = ", ".join(n.name or n.output[0] for n in todo[:5])
            return Guarantee(False, f"grouped Conv(s) with unaligned channels per group left: {names}")
        return Guarantee(
            True, "no grouped Conv with constant weights has unaligned output channels per group" + _left(left, "; ")
        )


def _find(model: onnx.ModelProto) -> tuple[list[Any], list[Any]]:
    weights = {i.name: i for i in model.graph.initializer}
    verdicts = [(n, unaligned_grouped_conv(n, weights)) for n in model.graph.node if n.op_type == "Conv"]
    return [n for n, v in verdicts if v], [n for n, v in verdicts if v is None]


def _left(left: list[Any], sep: str = "") -> str:
    if not left:
        return ""
    return f"{sep}{len(left)} grouped Conv(s) with computed weights left as they are: " + ", ".join(
        n.name or n.output[0] for n in left[:3]
    )


def _split(model: onnx.ModelProto, node: Any, opset: int) -> list[Any]:
    """Split(X, C) -> one Conv per group (its slice of W and B) -> Concat(C), keeping the output name."""
    import numpy as np
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    attrs = [a for a in node.attribute if a.name != "group"]
    group = next(a.i for a in node.attribute if a.name == "group")
    w = numpy_helper.to_array(inits[node.input[1]])
    b = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2] in inits else None
    base = (node.name or node.output[0]) + "/split_grouped"
    per_in, per_out = w.shape[1], w.shape[0] // group
    parts = [f"{base}/x{g}" for g in range(group)]
    sizes = numpy_helper.from_array(np.full(group, per_in, np.int64), f"{base}/sizes")
    if opset >= 13:
        model.graph.initializer.append(sizes)
        split = helper.make_node("Split", [node.input[0], sizes.name], parts, name=f"{base}/Split", axis=1)
    else:
        split = helper.make_node("Split", [node.input[0]], parts, name=f"{base}/Split", axis=1, split=[per_in] * group)
    convs, outs = [], []
    for g in range(group):
        wg = numpy_helper.from_array(np.ascontiguousarray(w[g * per_out : (g + 1) * per_out]), f"{base}/w{g}")
        model.graph.initializer.append(wg)
        inputs = [parts[g], wg.name]
        if b is not None:
            bg = numpy_helper.from_array(np.ascontiguousarray(b[g * per_out : (g + 1) * per_out]), f"{base}/b{g}")
            model.graph.initializer.append(bg)
            inputs.append(bg.name)
        outs.append(f"{base}/y{g}")
        conv = helper.make_node("Conv", inputs, [outs[-1]], name=f"{base}/Conv{g}")
        conv.attribute.extend(attrs)
        convs.append(conv)
    concat = helper.make_node("Concat", outs, [node.output[0]], name=f"{base}/Concat", axis=1)
    return [split, *convs, concat]
