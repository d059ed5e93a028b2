"""Which nodes a bundle's WebGPU EP has a kernel for, the way ONNX Runtime decides it.

ORT places the nodes of the graph its basic (level-1) optimizations leave: Constant nodes become
initializers and constant subgraphs are folded before any EP is asked, so they are never placed (a
Resize's roi and scales built from Constant nodes included). The EP then claims a node when it
registers a kernel for the node's op, opset and *input types* (the native EP has no int64 Transpose,
so a Transpose of NonZero indices runs on the CPU). webgpu-lint predicts the fallbacks the same way:

- the graph: ORT's own basic optimizations (the Python onnxruntime is the same release as the pinned
  onnxruntime-web), run once on the artifact;
- the kernels: `ops-measured.json`, signatures (domain, op, opset version, input types) measured in
  headless Chromium for each bundle's EP by scripts/gen_webgpu_ops.py (ORT logs "kernel not found in
  registries" for every node it cannot place), over every node of the recipes and test graphs here;
  for a signature not measured, the JSEP bundle falls back to its published table (ops.json, by op
  and opset only) and the native bundles report the node as not predicted.
"""

from __future__ import annotations

import json
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

MEASURED = Path(__file__).with_name("ops-measured.json")
ELEM = {
    1: "float32",
    2: "uint8",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
}


def basic_optimized(path: Path) -> onnx.ModelProto:
    """The graph ORT partitions: `path` after ONNX Runtime's basic optimizations (constant folding, Constant
    nodes to initializers, redundant nodes removed), which run before any EP is asked."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="recipekit-lint-") as tmp:
        out = Path(tmp) / "basic.onnx"
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(out)
        opts.log_severity_level = 3
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return onnx.load(str(out))


def input_types(model: onnx.ModelProto) -> dict[str, str]:
    """Element type of every tensor ONNX shape inference can type."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001 - an untyped tensor only leaves its signatures unknown
        inferred = model.graph
    values = [*inferred.value_info, *inferred.input, *inferred.output]
    out = {v.name: ELEM.get(v.type.tensor_type.elem_type, "?") for v in values if v.type.HasField("tensor_type")}
    out.update({t.name: ELEM.get(t.data_type, "?") for t in model.graph.initializer})
    return out


def signatures(model: onnx.ModelProto) -> dict[str, str]:
    """node label -> "domain|op|since|input types" (the key kernels are registered by)."""
    from recipekit.targets.webgpu.graph import node_label, since_version

    opsets = {o.domain if o.domain != "ai.onnx" else "": o.version for o in model.opset_import}
    types = input_types(model)
    out = {}
    for node in model.graph.node:
        domain = "" if node.domain == "ai.onnx" else node.domain
        since = since_version(node.op_type, domain, opsets.get(domain, 1))
        dtypes = ",".join(types.get(t, "?") if t else "-" for t in node.input)
        out[node_label(node)] = f"{domain}|{node.op_type}|{since}|{dtypes}"
    return out


@lru_cache(maxsize=1)
def measured() -> dict[str, Any]:
    return json.loads(MEASURED.read_text()) if MEASURED.is_file() else {"kernels": {}}


def has_kernel(signature: str, kernels: str) -> bool | None:
    """Measured verdict for one signature on a kernel family ("jsep", "native"); None: not measured."""
    return measured()["kernels"].get(kernels, {}).get(signature)


def predict(path: Path, model: onnx.ModelProto, family: str, table: Any) -> tuple[list[str], list[str], str]:
    """(no kernel, not predicted, note) for the artifact at `path`: `fallbacks` on the graph ORT partitions
    (`model`, the file as it is, where ONNX Runtime cannot optimize it here; the note says so)."""
    try:
        placed, note = basic_optimized(path), ""
    except Exception as exc:  # noqa: BLE001 - any ORT refusal: predict on the file as it is
        placed, note = model, f"ONNX Runtime could not optimize it ({str(exc).splitlines()[0][:200]})"
    return (*fallbacks(placed, family, table), note)


def fallbacks(model: onnx.ModelProto, family: str, table: Any) -> tuple[list[str], list[str]]:
    """(nodes without a kernel, nodes not predicted) among those ORT places: the dynamic nodes of `model`
    (ORT's basically optimized graph; constant ones are folded before placement). `table`: the published
    JSEP table (graph.KernelTable), the fallback for signatures not measured on the JSEP bundle."""
    from recipekit.onnx.cut import Graph
    from recipekit.targets.webgpu.graph import node_label

    dynamic, sigs = Graph(model).dynamic, signatures(model)
    cpu, unknown = [], []
    for node in model.graph.node:
        if not any(o in dynamic for o in node.output):
            continue
        label = node_label(node)
        domain, op, since, _ = sigs[label].split("|")
        verdict = has_kernel(sigs[label], family)
        if verdict is None and family == "jsep":
            verdict = table.runs(op, domain, int(since))
        if verdict is None:
            unknown.append(label)
        elif not verdict:
            cpu.append(label)
    return cpu, unknown


def probe_model(model: onnx.ModelProto, node: onnx.NodeProto, types: dict[str, str]) -> onnx.ModelProto:
    """`node` alone: its constant inputs as initializers, the others typed graph inputs (what ORT needs to
    place it: op, opset and input types)."""
    from onnx import helper

    inits = {t.name: t for t in model.graph.initializer}
    dtypes = {v: k for k, v in ELEM.items()}
    feeds = [t for t in dict.fromkeys(node.input) if t and t not in inits]
    graph = helper.make_graph(
        [node],
        "probe",
        [helper.make_tensor_value_info(t, dtypes.get(types.get(t, ""), 1), None) for t in feeds],
        [helper.make_empty_tensor_value_info(t) for t in node.output if t],
        [inits[t] for t in dict.fromkeys(node.input) if t in inits],
    )
    out = helper.make_model(graph, opset_imports=list(model.opset_import))
    out.ir_version = model.ir_version
    return out
