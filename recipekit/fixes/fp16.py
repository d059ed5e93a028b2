"""fp16: float16 weights and compute, with float32 graph inputs and outputs kept by default.

Why: half the weight size and faster kernels on GPUs and WebGPU, while callers keep feeding and
reading float32 (the golden cases and the browser page stay the same). Uses ONNX Runtime's
converter (onnxruntime.transformers.float16, the onnxconverter-common algorithm), which keeps ops
that are unsafe in fp16 (NonMaxSuppression, TopK, Range, Resize's old Upsample, ...) in float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from recipekit.core.plugin import Strict
from recipekit.fixes.base import Check, FixContext, Guarantee, OnnxFix

if TYPE_CHECKING:
    import onnx

FLOAT, FLOAT16 = 1, 10  # onnx.TensorProto.FLOAT, FLOAT16


class Fp16Config(Strict):
    """Options of fp16 (passed to onnxruntime.transformers.float16.convert_float_to_float16)."""

    keep_io_types: bool = Field(True, description="graph inputs and outputs stay float32 (Casts are inserted inside)")
    op_block_list: list[str] | None = Field(
        None,
        description="op types kept in float32; none: ONNX Runtime's default list (NonMaxSuppression, TopK, Range, ...)",
    )
    node_block_list: list[str] = Field(default_factory=list, description="node names kept in float32")


class Fp16(OnnxFix):
    """Convert float32 weights and compute to float16."""

    name: ClassVar[str] = "fp16"
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = "float16 weights and compute; float32 inputs/outputs kept unless keep_io_types is false"
    Config = Fp16Config

    def _blocked(self) -> set[str]:
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

        return set(DEFAULT_OP_BLOCK_LIST if self.config.op_block_list is None else self.config.op_block_list)

    def fp32_weights(self, model: onnx.ModelProto) -> list[str]:
        """float32 initializers read by at least one node that is not kept in float32."""
        blocked, nodes = self._blocked(), set(self.config.node_block_list)
        fp32 = {i.name for i in model.graph.initializer if i.data_type == FLOAT}
        return sorted(
            {
                i
                for n in model.graph.node
                if n.op_type not in blocked and n.name not in nodes
                for i in n.input
                if i in fp32
            }
        )

    def check(self, model: onnx.ModelProto, ctx: FixContext) -> Check:
        left = self.fp32_weights(model)
        if not left:
            return Check("not-needed", "no float32 weight feeds an op that may run in float16")
        return Check("applies", f"{len(left)} float32 weights feed ops that may run in float16")

    def apply(self, model: onnx.ModelProto, ctx: FixContext) -> onnx.ModelProto:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        from recipekit.onnx.util import without_value_info

        c = self.config
        return convert_float_to_float16(
            without_value_info(model),
            keep_io_types=c.keep_io_types,
            op_block_list=c.op_block_list,
            node_block_list=c.node_block_list or None,
        )

    def guarantee(self, model: onnx.ModelProto, ctx: FixContext) -> Guarantee:
        left = self.fp32_weights(model)
        g = model.graph
        io = [v for v in [*g.input, *g.output] if v.type.tensor_type.elem_type in (FLOAT, FLOAT16)]
        want = FLOAT if self.config.keep_io_types else FLOAT16
        wrong = [v.name for v in io if v.type.tensor_type.elem_type != want and self.config.keep_io_types]
        n16 = sum(i.data_type == FLOAT16 for i in g.initializer)
        io_kind = "float32" if want == FLOAT else "as converted"
        detail = f"{n16} float16 weights; {len(left)} float32 weights feed fp16-able ops; io {io_kind}"
        if wrong:
            detail += f"; not float32: {', '.join(wrong)}"
        return Guarantee(not left and not wrong, detail)
