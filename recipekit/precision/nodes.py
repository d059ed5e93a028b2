"""The quantizable nodes of a graph, and blocks of them for a sensitivity pass that has to be quick.

A quantizable node is one of the recipe's `ops` that the recipe does not keep float (its
`exclude_nodes`, and the decode tail with `float_tail`). Blocks follow the names exporters give
nodes (`/model.22/cv3.0/cv3.0.1/conv/Conv`: PyTorch's module scopes): every node starts in the block
of its outermost scope, and the largest blocks are split into their inner scopes while the count
stays within the budget, so a detection head is measured branch by branch and a backbone stage as a
whole. When even the outermost scopes are too many (or names have none, `Conv_12`), neighbouring
scopes are merged in graph order instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from recipekit.recipe.schema import Quantization


@dataclass(frozen=True)
class Block:
    """Nodes measured (and kept float) together: `name` is their common scope or their span."""

    name: str
    nodes: tuple[str, ...]


def named(model: onnx.ModelProto) -> bool:
    """Give every unnamed or duplicate-named node a unique name (the quantizer selects nodes by name).
    Returns True when a name was changed."""
    seen: set[str] = set()
    changed = False
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            base = node.name or f"{node.op_type}_{i}"
            name, k = base, 0
            while name in seen:
                k += 1
                name = f"{base}_{k}"
            node.name, changed = name, True
        seen.add(node.name)
    return changed


def kept_float(model_path: Path, q: Quantization) -> list[str]:
    """The nodes the recipe keeps float whatever the search does: its `exclude_nodes` and, with
    `float_tail`, the decode tail."""
    return sorted({*q.exclude_nodes, *(float_tail(model_path) if q.float_tail else [])})


def quantizable(model_path: Path, q: Quantization) -> list[str]:
    """Names of the nodes INT8 quantizes under `q`, in graph order."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    kept = set(kept_float(model_path, q))
    ops = set(q.ops)
    return [n.name for n in model.graph.node if n.op_type in ops and n.name not in kept]


COMPUTE = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def float_tail(model_path: Path) -> list[str]:
    """Nodes from which a graph output is reached without passing a compute op: the decode tail
    (box decoding, score/box concatenation, NMS) that must stay float. Walks back from the outputs."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    producer = {o: n for n in model.graph.node for o in n.output}
    pending, seen, tail = [o.name for o in model.graph.output], set(), []
    while pending:
        node = producer.get(pending.pop())
        if node is None or node.name in seen or node.op_type in COMPUTE:
            continue
        seen.add(node.name)
        tail.append(node.name)
        pending.extend(node.input)
    return tail


def _scope(name: str, depth: int) -> str:
    parts = [p for p in name.split("/") if p]
    return "/" + "/".join(parts[:depth]) if len(parts) > depth else name


def _group(names: list[str], depth: int) -> list[Block]:
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(_scope(n, depth), []).append(n)
    return [Block(k, tuple(v)) for k, v in groups.items()]


def _merged(part: list[Block]) -> Block:
    name = part[0].name if len(part) == 1 else f"{part[0].name} .. {part[-1].name}"
    return Block(name, tuple(n for b in part for n in b.nodes))


def _chunks(groups: list[Block], budget: int) -> list[Block]:
    """Consecutive groups merged into at most `budget` chunks of about equal node counts."""
    total, out, part, done = sum(len(g.nodes) for g in groups), [], [], 0
    for g in groups:
        part.append(g)
        done += len(g.nodes)
        if done >= total * (len(out) + 1) / budget:
            out.append(_merged(part))
            part = []
    return out + ([_merged(part)] if part else [])


def blocks(names: list[str], budget: int) -> list[Block]:
    """`names` grouped into at most `budget` blocks (every node alone when budget is 0 or enough)."""
    if budget <= 0 or len(names) <= budget:
        return [Block(n, (n,)) for n in names]
    out, depth = _group(names, 1), {}
    if len(out) > budget:
        return _chunks(out, budget)
    while True:
        for block in sorted(out, key=lambda b: -len(b.nodes)):
            d = depth.get(block.name, 1) + 1
            inner = _group(list(block.nodes), d)
            while len(inner) == 1 and inner[0].nodes == block.nodes and d < 64 and "/" in block.nodes[0]:
                d += 1  # a scope with a single inner scope: look deeper
                inner = _group(list(block.nodes), d)
            if len(inner) > 1 and len(out) - 1 + len(inner) <= budget:
                i = out.index(block)
                out[i : i + 1] = inner
                depth.update({b.name: d for b in inner})
                break
        else:
            return out


def split(names: list[str] | tuple[str, ...], parts: int) -> list[Block]:
    """A block's nodes in at most `parts` parts: its first inner scopes that differ (neighbours merged
    in graph order when there are more), else consecutive chunks. One part: it cannot be split."""
    names = list(names)
    if len(names) < 2:
        return [Block(names[0] if names else "", tuple(names))]
    for depth in range(1, 64):
        groups = _group(names, depth)
        if len(groups) > 1:
            return groups if len(groups) <= parts else _chunks(groups, parts)
        if not any("/" in n for n in names) or groups[0].name in names:
            break
    return _chunks([Block(n, (n,)) for n in names], parts)


def compute_shares(model_path: Path, x: np.ndarray) -> dict[str, float]:
    """node name -> its share of the model's multiply-accumulates on input `x` (Conv, ConvTranspose,
    MatMul, Gemm; every other node its output elements): a deterministic stand-in for its share of the
    latency, which the search orders by (a profile differs from run to run). The tensors' shapes are
    read from one run of the model (ONNX shape inference stops at data-dependent reshapes)."""
    import onnx

    from recipekit.onnx.runtime import ort_with_all_outputs

    model = onnx.load(str(model_path), load_external_data=False)
    runner = ort_with_all_outputs(model_path)
    values = runner.run({runner.input_names[0]: x}, [])
    shapes = {n: list(v.shape) for n, v in zip(runner.output_names, values, strict=True)}
    shapes.update({i.name: list(i.dims) for i in model.graph.initializer})
    cost = {n.name: _macs(n, shapes) for n in model.graph.node}
    total = sum(cost.values()) or 1.0
    return {k: v / total for k, v in cost.items()}


def _macs(node: onnx.NodeProto, shapes: dict[str, list[int]]) -> float:
    import math

    out = shapes.get(node.output[0]) if node.output else None
    if not out or any(d <= 0 for d in out):
        return 0.0
    elems = float(math.prod(out))
    if node.op_type in ("Conv", "ConvTranspose"):
        w = shapes.get(node.input[1], [])
        per = math.prod(w[1:]) if node.op_type == "Conv" else math.prod(w[2:]) * (w[0] if w else 0)
        return elems * per if w else elems
    if node.op_type in ("MatMul", "Gemm"):
        a = shapes.get(node.input[0], [])
        trans = node.op_type == "Gemm" and any(x.name == "transA" and x.i for x in node.attribute)
        k = (a[-2] if trans else a[-1]) if a else 1
        return elems * max(k, 1)
    return elems
