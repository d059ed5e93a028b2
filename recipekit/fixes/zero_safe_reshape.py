"""zero-safe-reshape: give Reshape a static value where its target mixes -1 with a copied or runtime dim.

ONNX Reshape reads a 0 in its target as "copy this input dim" (allowzero=0). Torch traces such as
torchvision's `x.reshape(box_sum, -1)` become a target [box_sum, -1] computed at run time; with
zero proposals box_sum is 0, and {0, 364} -> {0, -1} is ambiguous, so ONNX Runtime fails where
PyTorch returns no detections. The -1 stands for a static size (364 = 91 classes x 4), which this
fix infers without running the model: ONNX shape inference with data propagation names each
dim (a number or a symbol), and the -1 is the data's dims divided by the target's other entries
after cancelling equal symbols. Resolving one Reshape can make the next one's data static, so it
repeats until nothing changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from recipekit.fixes.base import Check, FixContext, Guarantee, OnnxFix

if TYPE_CHECKING:
    import onnx

Dim = int | str | None


class ZeroSafeReshape(OnnxFix):
    """Replaces -1 by its inferred static value in Reshapes whose target also has a 0 or runtime entry."""

    name: ClassVar[str] = "zero-safe-reshape"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = "static -1 in Reshape targets mixing -1 with copied/runtime dims (zero-size safe)"

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        rows = [r for r in _analyse(model) if r["risky"]]
        fixable = [r["node"] for r in rows if r["value"]]
        if fixable:
            return Check(
                "applies",
                f"{len(fixable)} Reshape target(s) mix -1 with a copied/runtime dim and the -1 is static: "
                f"{', '.join(fixable[:5])}",
            )
        return Check(
            "not-needed", _left_message(rows) or "no Reshape target mixes -1 with a copied 0 or a runtime entry"
        )

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        import onnx

        out = onnx.ModelProto()
        out.CopyFrom(model)
        for _ in range(len(out.graph.node)):
            todo = [r for r in _analyse(out) if r["risky"] and r["value"]]
            if not todo:
                break
            for r in todo:
                _replace(out, r)
        return out

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        """Every -1 that is provably static is static; the rest stand for data-dependent sizes."""
        rows = [r for r in _analyse(model) if r["risky"]]
        fixable = [r["node"] for r in rows if r["value"]]
        if fixable:
            return Guarantee(
                False, f"static -1 left in Reshape targets mixing -1 with copied/runtime dims: {', '.join(fixable[:5])}"
            )
        return Guarantee(
            True,
            "every Reshape whose target mixes -1 with a copied/runtime dim and whose -1 is static has it as a constant"
            + (f"; {_left_message(rows)}" if rows else ""),
        )


def _left_message(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    names = ", ".join(r["node"] for r in rows[:3]) + (", ..." if len(rows) > 3 else "")
    return f"{len(rows)} Reshape(s) keep a -1 that is not provably static (left as is): {names}"


def _analyse(model: onnx.ModelProto) -> list[dict[str, Any]]:
    """Per Reshape: its target entries, whether it is risky, and the static value of its -1 if known."""
    from onnx import shape_inference

    g = model.graph
    inferred = shape_inference.infer_shapes(model, data_prop=True).graph
    dims = {v.name: _dims(v) for v in [*inferred.value_info, *inferred.input, *inferred.output]}
    consts = _constants(g)
    producers = {o: n for n in g.node for o in n.output}
    rows = []
    for node in g.node:
        if node.op_type != "Reshape" or any(a.name == "allowzero" and a.i for a in node.attribute):
            continue
        target = _target(node.input[1], consts, producers, dims)
        if target is None or -1 not in target:
            continue
        risky = any(t == 0 or t is None for t in target)
        value = _value(target, dims.get(node.input[0]), dims.get(node.output[0])) if risky else None
        rows.append({"node": node.name or node.output[0], "reshape": node, "risky": risky, "value": value})
    return rows


def _dims(v: Any) -> list[Dim] | None:
    t = v.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def _constants(g: Any) -> dict[str, list[int]]:
    """1-D int64 constants (initializers and Constant nodes) by name."""
    from onnx import numpy_helper

    out = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return {k: [int(x) for x in v.reshape(-1)] for k, v in out.items() if v.dtype.kind == "i" and v.ndim <= 1}


def _target(name: str, consts: dict, producers: dict, dims: dict) -> list[int | None] | None:
    """Target entries: ints where constant, None where computed at run time; None if unknown length."""
    if name in consts:
        return list(consts[name])
    node = producers.get(name)
    if node is None or node.op_type != "Concat":
        return None
    out: list[int | None] = []
    for part in node.input:
        if part in consts:
            out += consts[part]
        elif (d := dims.get(part)) is not None and len(d) == 1 and isinstance(d[0], int):
            out += [None] * d[0]
        else:
            return None
    return out


def _value(target: list[int | None], data: list[Dim] | None, result: list[Dim] | None) -> int | None:
    """The -1 entry: data dims over the other entries, equal symbols cancelled; None unless static."""
    if data is None or result is None or len(result) != len(target):
        return None
    num, den = list(data), []
    for i, t in enumerate(target):
        if t == -1:
            continue
        entry = data[i] if t == 0 and i < len(data) else (result[i] if t is None else t)
        if entry is None:
            return None
        if isinstance(entry, str) and entry in num:
            num.remove(entry)
        else:
            den.append(entry)
    if not all(isinstance(x, int) for x in num + den):
        return None
    n, d = _prod(num), _prod(den)
    return n // d if d > 0 and n % d == 0 and n // d > 0 else None


def _prod(xs: list[Any]) -> int:
    p = 1
    for x in xs:
        p *= x
    return p


def _replace(model: onnx.ModelProto, row: dict[str, Any]) -> None:
    """Point the Reshape at a copy of its target with -1 set to the value (shared inputs untouched)."""
    from recipekit.fixes._zero_safe_reshape_edit import set_minus_one

    set_minus_one(model, row["reshape"], row["value"])
