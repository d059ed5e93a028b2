"""Running an artifact: a small Runner interface the gates use, and its ONNX Runtime (CPU) version."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


class Runner:
    """Runs one artifact. `run` takes the named inputs and returns outputs in `output_names` order."""

    input_names: list[str]
    output_names: list[str]
    description: str = ""

    def run(self, feeds: dict[str, np.ndarray], extra_outputs: list[str] | None = None) -> list[np.ndarray]:
        raise NotImplementedError

    def run_one(self, x: np.ndarray) -> list[np.ndarray]:
        """Run with a single input tensor."""
        return self.run({self.input_names[0]: x})


def session_options() -> dict[str, Any]:
    """The ONNX Runtime session options gates validate under (recorded in the manifest)."""
    return {
        "providers": ["CPUExecutionProvider"],
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "intra_op_num_threads": 0,
        "execution_mode": "ORT_SEQUENTIAL",
    }


class OrtRunner(Runner):
    """ONNX Runtime on the CPU, with the options in `session_options()`."""

    def __init__(self, path: Path, model_bytes: bytes | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        opts.intra_op_num_threads = int(os.environ.get("RECIPEKIT_THREADS", "0"))  # 0: all cores
        self.threads = opts.intra_op_num_threads or os.cpu_count() or 1  # what timings were measured with
        self.session = ort.InferenceSession(model_bytes or str(path), opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.description = f"onnxruntime {ort.__version__} CPU"

    def run(self, feeds: dict[str, np.ndarray], extra_outputs: list[str] | None = None) -> list[np.ndarray]:
        return self.session.run(self.output_names + list(extra_outputs or []), feeds)


def ort_with_all_outputs(path: Path) -> OrtRunner:
    """A runner that can also return every intermediate tensor (for zero-sized tensor checks)."""
    import onnx

    model = onnx.load(str(path))
    known = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in known:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
                known.add(name)
    return OrtRunner(path, model.SerializeToString())
