"""split-grouped-conv: a grouped Conv whose output channels per group are not a multiple of 4 becomes
one Conv per group (Split -> Convs -> Concat).

onnxruntime-web's JSEP WebGPU Conv computes such grouped convolutions wrongly: RTMO's pose branch
(144 channels in 8 groups of 18) is off by up to 10 on SwiftShader while ONNX Runtime's CPU is exact;
groups of 9, 10 or 6 channels fail alike, groups of 12, 16, 36 or 72 and depthwise convolutions are
right (measured one Conv at a time, headless Chromium). The native WebGPU EP (bundles `webgpu` and
`jspi`) computes them right in 1.31.1 (it got them wrong in 1.30.0), so the fix is a JSEP workaround.
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
    version: ClassVar[str] = "2"
    summary: ClassVar[str] = "grouped Convs with output channels per group not a multiple of 4 split per group (WebGPU)"
    bundles: ClassVar[tuple[str, ...] | None] = ("jsep",)  # the native EP computes them right (measured, 1.31.1)

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
    """Slice(X, C) per group -> one Conv per group (its slice of W and B) -> Concat(C), keeping the output name.

    Slices and Concats of at most CHUNK inputs, not one Split / Concat with a tensor per group: a WebGPU
    kernel binds every tensor as a storage buffer, and onnxruntime-web asks for the default limit of 8
    per shader (a Split into 8 groups needs 9, and its results are silently garbage)."""
    import numpy as np
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    attrs = [a for a in node.attribute if a.name != "group"]
    group = next(a.i for a in node.attribute if a.name == "group")
    w = numpy_helper.to_array(inits[node.input[1]])
    b = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2] in inits else None
    base = (node.name or node.output[0]) + "/split_grouped"
    per_in, per_out = w.shape[1], w.shape[0] // group
    nodes, outs = [], []
    for g in range(group):
        part = f"{base}/x{g}"
        nodes.append(_slice(model, node.input[0], part, g * per_in, (g + 1) * per_in, opset, f"{base}/Slice{g}"))
        wg = numpy_helper.from_array(np.ascontiguousarray(w[g * per_out : (g + 1) * per_out]), f"{base}/w{g}")
        model.graph.initializer.append(wg)
        inputs = [part, wg.name]
        if b is not None:
            bg = numpy_helper.from_array(np.ascontiguousarray(b[g * per_out : (g + 1) * per_out]), f"{base}/b{g}")
            model.graph.initializer.append(bg)
            inputs.append(bg.name)
        outs.append(f"{base}/y{g}")
        conv = helper.make_node("Conv", inputs, [outs[-1]], name=f"{base}/Conv{g}")
        conv.attribute.extend(attrs)
        nodes.append(conv)
    return nodes + _concat_tree(outs, node.output[0], base)


CHUNK = 4  # inputs per Concat: with its output, well under WebGPU's 8 storage buffers per shader


def _slice(model: onnx.ModelProto, src: str, dest: str, start: int, end: int, opset: int, name: str) -> Any:
    import numpy as np
    from onnx import helper, numpy_helper

    if opset < 10:
        return helper.make_node("Slice", [src], [dest], name=name, starts=[start], ends=[end], axes=[1])
    consts = [
        numpy_helper.from_array(np.array([v], np.int64), f"{name}/{k}") for k, v in (("s", start), ("e", end), ("a", 1))
    ]
    model.graph.initializer.extend(consts)
    return helper.make_node("Slice", [src, *(c.name for c in consts)], [dest], name=name)


def _concat_tree(parts: list[str], output: str, base: str) -> list[Any]:
    """Concat(axis 1) of `parts` into `output`, CHUNK inputs at a time."""
    from onnx import helper

    nodes, level = [], 0
    while len(parts) > CHUNK:
        chunks = [parts[i : i + CHUNK] for i in range(0, len(parts), CHUNK)]
        parts = []
        for i, chunk in enumerate(chunks):
            if len(chunk) == 1:
                parts.append(chunk[0])
                continue
            parts.append(f"{base}/cat{level}_{i}")
            nodes.append(helper.make_node("Concat", chunk, [parts[-1]], name=f"{base}/Concat{level}_{i}", axis=1))
        level += 1
    nodes.append(helper.make_node("Concat", parts, [output], name=f"{base}/Concat", axis=1))
    return nodes
