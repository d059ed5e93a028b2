"""Cuts of an ONNX graph: the tensors that depend on its inputs, a node's ancestry, the model reduced to
what some tensors need (their values exposed as outputs), and one node alone with its inputs.

What recipekit.onnx.localize runs on a backend; also webgpu-lint's notion of which nodes a runtime places
(the dynamic ones: everything else is constant and folded before placement).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import onnx


class Graph:
    """Lookups over one model's main graph: producers, constants, ancestors, cuts."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        g = model.graph
        self.nodes = list(g.node)
        self.producer = {o: i for i, n in enumerate(self.nodes) for o in n.output if o}
        self.initializers = {t.name: t for t in g.initializer}
        self.inputs = [i.name for i in g.input if i.name not in self.initializers]
        self.dynamic = self._dynamic()

    def _dynamic(self) -> set[str]:
        """Tensors that depend on a graph input (the rest is constant: folded by every runtime)."""
        out = set(self.inputs)
        for n in self.nodes:
            if any(i in out for i in n.input if i) or _subgraph_inputs(n) & out:
                out.update(o for o in n.output if o)
        return out

    def ancestors(self, tensors: list[str]) -> list[int]:
        """Indexes (topological order) of the nodes the tensors are computed from, theirs included."""
        seen: set[int] = set()
        stack = [self.producer[t] for t in tensors if t in self.producer]
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            for t in [*self.nodes[i].input, *_subgraph_inputs(self.nodes[i])]:
                if t in self.producer:
                    stack.append(self.producer[t])
        return sorted(seen)

    def chain(self, target: str) -> list[str]:
        """The dynamic tensors `target` is computed from (itself last), in topological order."""
        return [o for i in self.ancestors([target]) for o in self.nodes[i].output if o in self.dynamic]

    def cut(self, outputs: list[str], ref: dict[str, np.ndarray], nodes: list[int] | None = None) -> onnx.ModelProto:
        """The model reduced to the nodes `outputs` need (or `nodes`), with `outputs` as its outputs."""
        from onnx import helper

        keep = nodes if nodes is not None else self.ancestors(outputs)
        g = self.model.graph
        used = {t for i in keep for t in [*self.nodes[i].input, *_subgraph_inputs(self.nodes[i])]}
        outs = [_value_info(t, ref.get(t)) for t in outputs]
        graph = helper.make_graph(
            [self.nodes[i] for i in keep],
            g.name or "cut",
            [i for i in g.input if i.name in used and i.name not in self.initializers],
            outs,
            [t for name, t in self.initializers.items() if name in used],
        )
        cut = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        cut.ir_version = self.model.ir_version
        del cut.metadata_props[:]
        return cut

    def single(self, index: int, ref: dict[str, np.ndarray]) -> tuple[onnx.ModelProto, list[str]]:
        """Node `index` alone: its dynamic inputs are graph inputs, its constant ones initializers."""
        from onnx import helper, numpy_helper

        node = self.nodes[index]
        feeds = [t for t in dict.fromkeys(node.input) if t and t in self.dynamic]
        consts = [t for t in dict.fromkeys(node.input) if t and t not in self.dynamic]
        inits = [self.initializers[t] if t in self.initializers else numpy_helper.from_array(ref[t], t) for t in consts]
        graph = helper.make_graph(
            [node],
            f"repro_{node.op_type}",
            [_value_info(t, ref[t], shaped=True) for t in feeds],
            [_value_info(t, ref.get(t)) for t in node.output if t],
            inits,
        )
        model = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        model.ir_version = self.model.ir_version
        return model, feeds


def _subgraph_inputs(node: onnx.NodeProto) -> set[str]:
    """Outer-scope tensors a node's subgraphs (If, Loop, Scan) read."""
    from onnx import AttributeProto

    out: set[str] = set()
    for a in node.attribute:
        graphs = [a.g] if a.type == AttributeProto.GRAPH else list(a.graphs)
        for sub in graphs:
            local = {i.name for i in sub.input} | {t.name for t in sub.initializer}
            for n in sub.node:
                out.update(t for t in [*n.input, *_subgraph_inputs(n)] if t and t not in local)
                local.update(n.output)
    return out


def _value_info(name: str, value: Any, shaped: bool = False) -> onnx.ValueInfoProto:
    """A graph input/output: the reference value's element type, and its shape when `shaped` (a repro's
    inputs: as static as in the model's run); outputs keep their shape open (runtimes may differ)."""
    import numpy as np
    from onnx import helper

    if value is None:
        return helper.make_empty_tensor_value_info(name)
    value = np.asarray(value)
    return helper.make_tensor_value_info(
        name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape if shaped else None
    )
