"""Static analysis for webgpu-lint: which nodes JSEP's WebGPU kernels run, and which tensors can be empty.

The kernel table is recipekit/targets/webgpu/ops.json (from onnxruntime-web's own
docs/webgpu-operators.md; see scripts/gen_webgpu_ops.py). Zero-size analysis is a forward pass
over the graph: outputs of NonMaxSuppression / NonZero (and ops alike) can hold zero rows; ops
that map an empty input to an empty output pass that on; a JSEP kernel that gets a possibly
empty input and can produce a non-empty output is what raises "Program X has zero-sized tensor(s)".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.onnx.util import EMPTY_SOURCES

if TYPE_CHECKING:
    import onnx

TABLE = Path(__file__).with_name("ops.json")
# Ops that turn an empty input into an empty output (element-wise, layout, gathers): emptiness passes on.
EMPTY_PRESERVING = {
    "Conv",  # an empty batch gives an empty batch (measured on both bundles, 1.31.1)
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "InstanceNormalization",
    "BatchNormalization",
    "Abs",
    "Neg",
    "Sigmoid",
    "Relu",
    "Exp",
    "Log",
    "Sqrt",
    "Cast",
    "Clip",
    "Floor",
    "Ceil",
    "Round",
    "Not",
    "Identity",
    "Softmax",
    "LogSoftmax",
    "Erf",
    "Tanh",
    "HardSigmoid",
    "LeakyRelu",
    "Sign",
    "Reciprocal",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Where",
    "Greater",
    "Less",
    "Equal",
    "And",
    "Or",
    "Min",
    "Max",
    "Mod",
    "GreaterOrEqual",
    "LessOrEqual",
    "Transpose",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Slice",
    "Split",
    "Gather",
    "GatherElements",
    "GatherND",
    "Expand",
    "Tile",
    "MatMul",
    "TopK",
    "ArgMax",
    "ArgMin",
    "RoiAlign",
}
# JSEP kernels that fail on a zero-sized input even when their output is zero-sized too (measured
# with onnxruntime-web 1.30.0: GatherND with empty int64 indices -> "Unsupported data type: 7";
# Gemm with M = 0 -> "invalid shape specified", also after MatMul + Add, which ORT fuses into a Gemm).
JSEP_ZERO_FRAGILE = {"GatherND", "Gemm"}
# JSEP kernels that drop zero-sized inputs themselves (concat.ts removes empty inputs).
JSEP_DROPS_EMPTY = {"Concat"}
# Native WebGPU EP kernels that fail on a zero-sized input (measured with 1.31.1, one kernel at a time:
# Softmax, Conv, ConvTranspose, MaxPool, AveragePool, GlobalAveragePool, InstanceNormalization "Invalid
# dispatch group size (.., .., 0)" on an empty batch, ReduceMax/ReduceMin "Input tensor cannot be null or
# empty"); every other op measured takes it, whatever its output (Pad, Gemm, GatherND, LogSoftmax,
# BatchNormalization, Resize, ...).
NATIVE_ZERO_FRAGILE = {
    "Softmax",
    "ReduceMax",
    "ReduceMin",
    "Conv",
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "InstanceNormalization",
}


@dataclass(frozen=True)
class ZeroRules:
    """What a bundle's kernels do with a zero-sized input: the ops that fail on it, and whether any op whose
    output is not empty fails too (JSEP: "Program X has zero-sized tensor(s)"), except those that drop it."""

    fragile: frozenset[str]
    nonempty_output_fails: bool
    drops_empty: frozenset[str] = frozenset()


ZERO_RULES = {
    "jsep": ZeroRules(frozenset(JSEP_ZERO_FRAGILE), True, frozenset(JSEP_DROPS_EMPTY)),
    "native": ZeroRules(frozenset(NATIVE_ZERO_FRAGILE), False),
}
# Ops whose output is never empty whatever the input (they describe the input).
NEVER_EMPTY = {"Shape", "Size"}
# Inputs a kernel reads on the CPU as parameters (ORT registers them as CPU inputs), never as a GPU program
# buffer: an empty one (Resize's roi when scales are given, scales when sizes are) is how ONNX leaves an
# optional input out, and no "zero-sized tensor" error can come from it. op -> input positions.
PARAMETER_INPUTS = {
    "Resize": {1, 2, 3},
    "Upsample": {1},
    "Reshape": {1},
    "Expand": {1},
    "Tile": {1},
    "Slice": {1, 2, 3, 4},
    "Pad": {1, 2, 3},
    "Split": {1},
    "Squeeze": {1},
    "Unsqueeze": {1},
    "TopK": {1},
    "Range": {0, 1, 2},
    "ConstantOfShape": {0},
    "ReduceMean": {1},
    "ReduceSum": {1},
    "ReduceMax": {1},
    "ReduceMin": {1},
    "ReduceProd": {1},
    "NonMaxSuppression": {2, 3, 4},
    "Clip": {1, 2},
}


def data_inputs(node: onnx.NodeProto, dynamic: set[str]) -> list[str]:
    """The inputs a GPU kernel binds as data and that the data decides: not constants (an empty constant is
    empty by design, every run alike) and not parameters the kernel reads on the CPU (PARAMETER_INPUTS)."""
    params = PARAMETER_INPUTS.get(node.op_type, set())
    return [t for i, t in enumerate(node.input) if t and t in dynamic and i not in params]


@dataclass(frozen=True)
class KernelTable:
    """domain -> op -> [[lo, hi|None], ...] opset ranges JSEP registers kernels for."""

    source: str
    version: str
    domains: dict[str, dict[str, list[list[Any]]]]

    def runs(self, op: str, domain: str, since: int) -> bool:
        spans = self.domains.get(domain, {}).get(op)
        return any(lo <= since and (hi is None or since <= hi) for lo, hi in spans or [])


@lru_cache(maxsize=1)
def kernel_table() -> KernelTable:
    doc = json.loads(TABLE.read_text())
    return KernelTable(doc["source"], doc["onnxruntime_web"], doc["domains"])


def since_version(op: str, domain: str, opset: int) -> int:
    """The op version a model at `opset` uses (what kernel registrations are keyed on)."""
    import onnx

    try:
        return onnx.defs.get_schema(op, max_inclusive_version=opset, domain=domain).since_version
    except onnx.defs.SchemaError:
        return opset


def node_label(node: onnx.NodeProto) -> str:
    return f"{node.op_type} ({node.name or node.output[0]})"


def fallbacks(model: onnx.ModelProto, table: KernelTable) -> list[str]:
    """Nodes of the main graph JSEP has no kernel for (ORT runs them on the CPU)."""
    opsets = {o.domain if o.domain != "ai.onnx" else "": o.version for o in model.opset_import}
    out = []
    for node in model.graph.node:
        domain = "" if node.domain == "ai.onnx" else node.domain
        since = since_version(node.op_type, domain, opsets.get(domain, 1))
        if not table.runs(node.op_type, domain, since):
            out.append(node_label(node))
    return out


def zero_size_risks(
    model: onnx.ModelProto, on_gpu: set[str], rules: ZeroRules | None = None
) -> tuple[list[dict[str, Any]], set[str]]:
    """Nodes in `on_gpu` (labels) fed a possibly empty tensor that may give a non-empty output.

    Returns the findings and the set of possibly empty tensor names (figures for the report).
    """
    rules = rules or ZERO_RULES["jsep"]
    empty: set[str] = set()
    origin: dict[str, str] = {}
    findings = []
    for node in model.graph.node:  # ONNX graphs are topologically sorted
        params = PARAMETER_INPUTS.get(node.op_type, set())
        fed = [t for i, t in enumerate(node.input) if t in empty and i not in params]
        if node.op_type in EMPTY_SOURCES:
            for t in node.output:
                empty.add(t)
                origin[t] = node_label(node)
            continue
        if not fed or node.op_type in NEVER_EMPTY:
            continue
        if node_label(node) in on_gpu and node.op_type in rules.fragile:
            findings.append(
                {
                    "node": node_label(node),
                    "input": fed[0],
                    "from": origin[fed[0]],
                    "why": "kernel fails on zero-sized input",
                    "outputs": list(node.output),
                }
            )
        elif (
            rules.nonempty_output_fails
            and node_label(node) in on_gpu
            and not _preserves(node, empty)
            and node.op_type not in rules.drops_empty
        ):
            findings.append(
                {
                    "node": node_label(node),
                    "input": fed[0],
                    "from": origin[fed[0]],
                    "why": "zero-sized input, output may be non-empty",
                    "outputs": list(node.output),
                }
            )
        if _preserves(node, empty):
            for t in node.output:
                empty.add(t)
                origin[t] = origin[fed[0]]
    return findings, empty


def _preserves(node: onnx.NodeProto, empty: set[str]) -> bool:
    """Does an empty input give an empty output here (so emptiness passes on)?"""
    return node.op_type in EMPTY_PRESERVING or (node.op_type == "Concat" and all(t in empty for t in node.input if t))


def sizes_on(model_path: Path, feeds: dict[str, Any]) -> dict[str, int]:
    """Element count of every tensor when ONNX Runtime (CPU) runs `feeds`: confirms static findings
    and finds the empty tensors static analysis cannot follow (sizes computed through Shape)."""
    from recipekit.onnx.runtime import ort_with_all_outputs

    runner = ort_with_all_outputs(model_path)
    names = [o.name for o in runner.session.get_outputs()]
    values = runner.session.run(names, feeds)
    return {n: int(getattr(v, "size", 1)) for n, v in zip(names, values, strict=True)}


def observed_risks(
    model: onnx.ModelProto, on_gpu: set[str], sizes: dict[str, int], rules: ZeroRules | None = None
) -> list[dict[str, Any]]:
    """Nodes in `on_gpu` that got a zero-sized input in a real run (`sizes`) and fail on it by `rules`:
    a fragile kernel, or (JSEP) one whose output is not empty."""
    from recipekit.onnx.cut import Graph

    rules = rules or ZERO_RULES["jsep"]
    dynamic, findings = Graph(model).dynamic, []
    for node in model.graph.node:
        label = node_label(node)
        fed = [t for t in data_inputs(node, dynamic) if sizes.get(t) == 0]
        if not fed or label not in on_gpu or node.op_type in NEVER_EMPTY | rules.drops_empty:
            continue
        if node.op_type in rules.fragile:
            why = "kernel fails on zero-sized input"
        elif rules.nonempty_output_fails and any(sizes.get(t, 0) > 0 for t in node.output):
            why = "zero-sized input, non-empty output"
        else:
            continue
        findings.append({"node": label, "input": fed[0], "from": None, "why": why, "confirmed": True})
    return findings
