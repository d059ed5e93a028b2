"""What zero-safe-gemm and zero-safe-gathernd share: a node whose rows come from the data gets one all-zero
sentinel row appended to the input that carries them (a Concat, which JSEP handles with an empty input),
and the extra result row is sliced off (rows 0..-1 of the output), so every value is computed as before
and the empty case yields an empty result. A subclass says which nodes need it (`analyse`) and what the
sentinel row is (each row dict carries `zero` and `axis`); checking, rewriting and the guarantee are here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from recipekit.fixes.base import Check, FixContext, Guarantee, OnnxFix

if TYPE_CHECKING:
    import onnx


class SentinelRowFix(OnnxFix):
    op: ClassVar[str]  # the op type rewritten, e.g. "Gemm"
    input_index: ClassVar[int]  # which input carries the data-dependent rows
    suffix: ClassVar[str]  # added to the node's name for the tensors and nodes the fix adds
    risk: ClassVar[str]  # "with a data-dependent row count"
    risk_has: ClassVar[str]  # "has a data-dependent row count"
    done: ClassVar[str]  # "run on a sentinel row"

    def analyse(self, model: onnx.ModelProto) -> list[dict[str, Any]]:
        """Per node at risk: node, name, fixable, why (if not), guarded, and for fixable ones zero and axis."""
        raise NotImplementedError

    @staticmethod
    def shapes(model: onnx.ModelProto) -> tuple[dict[str, Any], dict[str, int], set[str], dict[str, Any]]:
        """Inferred dims and element types of every tensor (shape inference with data propagation), the
        symbolic dims of the graph inputs (batch-like: not data-dependent rows), and each tensor's producer."""
        from onnx import shape_inference

        from recipekit.onnx.util import dims as value_dims

        g = model.graph
        inferred = shape_inference.infer_shapes(model, data_prop=True).graph
        dims = {v.name: value_dims(v) for v in [*inferred.value_info, *inferred.input, *inferred.output]}
        dtypes = {v.name: v.type.tensor_type.elem_type for v in [*inferred.value_info, *inferred.input]}
        dtypes.update({i.name: i.data_type for i in g.initializer})
        batch = {d for i in g.input for d in (dims.get(i.name) or []) if isinstance(d, str)}
        return dims, dtypes, batch, {o: n for n in g.node for o in n.output}

    def is_guard(self, producer: Any, node: Any) -> bool:
        return producer is not None and producer.op_type == "Concat" and producer.name == node.name + self.suffix

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        rows = self.analyse(model)
        todo = [r["name"] for r in rows if r["fixable"] and not r["guarded"]]
        if todo:
            return Check("applies", f"{len(todo)} {self.op}(s) {self.risk}: {_names(todo)}")
        return Check("not-needed", self._left(rows) or f"no unguarded {self.op} {self.risk_has}")

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        import onnx

        out = onnx.ModelProto()
        out.CopyFrom(model)
        nodes = list(out.graph.node)
        for r in [r for r in self.analyse(out) if r["fixable"] and not r["guarded"]]:
            at = nodes.index(r["node"])
            before, after = self._guard(out, r)
            nodes[at : at + 1] = [before, r["node"], after]
        del out.graph.node[:]
        out.graph.node.extend(nodes)
        return out

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        rows = self.analyse(model)
        open_ = [r["name"] for r in rows if r["fixable"] and not r["guarded"]]
        if open_:
            return Guarantee(False, f"{self.op}(s) {self.risk} and no sentinel row: {_names(open_)}")
        left = self._left(rows)
        guarded = sum(r["guarded"] for r in rows)
        return Guarantee(True, f"{guarded} {self.op}(s) {self.risk} {self.done}" + (f"; {left}" if left else ""))

    def _left(self, rows: list[dict[str, Any]]) -> str:
        left = [r for r in rows if not r["fixable"] and not r["guarded"]]
        if not left:
            return ""
        return f"{len(left)} {self.op}(s) left as they are ({left[0]['why']}): {_names([r['name'] for r in left])}"

    def _guard(self, model: onnx.ModelProto, row: dict[str, Any]) -> tuple[Any, Any]:
        """Concat(rows input, zero row) before the node, Slice(rows 0..-1) after; the node keeps its output name."""
        import numpy as np
        from onnx import helper, numpy_helper

        node = row["node"]
        if not node.name:  # a name of its own, so that two unnamed nodes never share the added tensors
            node.name = node.output[0]
        base = node.name + self.suffix
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(row["zero"], base + "/zero_row"),
                numpy_helper.from_array(np.array([0], np.int64), base + "/start"),
                numpy_helper.from_array(np.array([-1], np.int64), base + "/end"),
            ]
        )
        padded, wide, result = base + "/rows", base + "/y", node.output[0]
        source = node.input[self.input_index]
        concat = helper.make_node("Concat", [source, base + "/zero_row"], [padded], name=base, axis=row["axis"])
        node.input[self.input_index] = padded
        node.output[0] = wide
        slice_ = helper.make_node(
            "Slice", [wide, base + "/start", base + "/end", base + "/start"], [result], name=base + "/slice"
        )
        return concat, slice_


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
