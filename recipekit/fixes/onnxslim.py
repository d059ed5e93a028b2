"""onnxslim: onnxslim's full simplification (folding, fusions, dead-node and subexpression elimination).

Why: fewer, fused nodes run faster everywhere and give TensorRT / WebGPU less to get wrong. onnxslim
iterates its passes to a fixed point, so the guarantee is that slimming the result again changes
nothing; the checker must also pass. (Named after the library; the module name shadows nothing
because recipekit imports `onnxslim` absolutely.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from recipekit.core.plugin import Strict
from recipekit.fixes.base import Check, FixContext, Guarantee, OnnxFix

if TYPE_CHECKING:
    import onnx


class OnnxSlimConfig(Strict):
    """Options of onnxslim (passed to onnxslim.slim)."""

    skip_optimizations: list[str] = Field(
        default_factory=list,
        description="onnxslim passes to skip: constant_folding, graph_fusion, dead_node_elimination, "
        "subexpression_elimination, weight_tying",
    )
    skip_fusion_patterns: list[str] = Field(
        default_factory=list, description="onnxslim fusion patterns to skip, e.g. FusionGemm, EliminationSlice"
    )
    size_threshold: int | None = Field(
        None, ge=0, description="bytes: constants larger than this are not folded; none: fold all"
    )


class OnnxSlim(OnnxFix):
    """Simplify the graph with onnxslim."""

    imports: ClassVar[tuple[str, ...]] = ("onnx", "onnxruntime", "onnxslim")

    name: ClassVar[str] = "onnxslim"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = "the graph is at onnxslim's fixed point"
    Config = OnnxSlimConfig

    def _slim(self, model: onnx.ModelProto) -> onnx.ModelProto:
        from recipekit.fixes._slim import slim

        c = self.config
        return slim(
            model,
            skip_optimizations=c.skip_optimizations,
            skip_fusion_patterns=c.skip_fusion_patterns or None,
            size_threshold=c.size_threshold,
        )

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        from recipekit.fixes._slim import same_graph
        from recipekit.onnx.util import op_counts

        try:
            slimmed = self._slim(model)
        except Exception as exc:  # onnxslim raises whatever its passes raise
            return Check("cannot-apply", f"onnxslim failed: {str(exc).splitlines()[0][:300]}")
        if same_graph(model, slimmed):
            return Check("not-needed", f"onnxslim changes nothing ({len(model.graph.node)} nodes)")
        before, after = op_counts(model), op_counts(slimmed)
        gone = {k: v - after.get(k, 0) for k, v in before.items() if v > after.get(k, 0)}
        return Check("applies", f"{len(model.graph.node)} -> {len(slimmed.graph.node)} nodes (fewer: {gone})")

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        return self._slim(model)

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        import onnx

        from recipekit.fixes._slim import same_graph

        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            return Guarantee(False, f"onnx checker fails: {str(exc).splitlines()[0][:300]}")
        again = self._slim(model)
        if not same_graph(model, again):
            return Guarantee(
                False,
                f"not at onnxslim's fixed point: slimming again gives "
                f"{len(again.graph.node)} nodes, not {len(model.graph.node)}",
            )
        return Guarantee(True, f"{len(model.graph.node)} nodes, at onnxslim's fixed point; onnx checker passes")
