"""INT8 by explicit quantization: a QDQ ONNX made with ONNX Runtime's static quantization.

Why ONNX Runtime's quantizer: NVIDIA Model Optimizer's ONNX PTQ needs onnxruntime-gpu, cupy and an
older onnx than this project pins, so it does not install here; ORT's `quantize_static` runs on the
CPU and writes standard QuantizeLinear/DequantizeLinear pairs. By default the QDQ is symmetric
INT8 (zero points 0, per-channel weights), the form TensorRT's explicit quantization accepts, so
the same file feeds ONNX Runtime and TensorRT; `activations: uint8` (asymmetric) runs faster on
ONNX Runtime's x86 kernels (measured in benchmarks/precision.py), and trt targets then compile a
symmetric twin with the same float nodes (`Quantizer.twin`).
The compute ops and the element-wise ops between them are quantized (`ops`); the decode tail, every
node from which an output is reached without a compute op (pixels and probabilities mixed), stays
float (`float_tail`).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.precision.nodes import kept_float

if TYPE_CHECKING:
    import numpy as np

    from recipekit.recipe.schema import Quantization

METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


def _input_name(model_path: Path) -> str:
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in inits)


class Quantizer:
    """ONNX Runtime's QDQ quantizer run once over the whole graph (calibrated once, the ranges kept in
    `work`); any choice of float nodes is then cut from that model (recipekit.precision.qdq): the
    sensitivity pass and the search quantize one model many ways in milliseconds each."""

    def __init__(self, model_path: Path, tensors: list[np.ndarray], q: Quantization, work: Path) -> None:
        self.model_path, self.tensors, self.q, self.work = model_path, tensors, q, work
        self.ranges = work / "calibration-ranges.json"
        self.excluded = kept_float(model_path, q)
        self._models: dict[str, Any] = {}

    def twin(self, activations: str) -> Quantizer:
        """The same quantizer with other activations (the calibration ranges shared)."""
        return Quantizer(
            self.model_path, self.tensors, self.q.model_copy(update={"activations": activations}), self.work
        )

    def _whole(self) -> Path:
        """The whole graph quantized (the recipe's exclusions float): ONNX Runtime's output, once."""
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        from recipekit.precision.calibration import reader

        out = self.work / f"whole-{self.q.activations}.onnx"
        if out.is_file():
            return out
        q, symmetric = self.q, self.q.activations == "int8"
        quantize_static(
            str(self.model_path),
            str(out),
            None if self.ranges.is_file() else reader(_input_name(self.model_path), self.tensors),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(q.ops),
            per_channel=q.per_channel,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=self.excluded,
            calibrate_method=getattr(CalibrationMethod, METHODS[q.method]),
            extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True, "CalibMovingAverage": False},
            calibration_cache_path=str(self.ranges),
        )
        return out

    @cached_property
    def names(self) -> set[str]:
        """The nodes INT8 quantizes (recipekit.precision.nodes.quantizable)."""
        from recipekit.precision.nodes import quantizable

        return set(quantizable(self.model_path, self.q))

    def _model(self, which: str) -> Any:
        import onnx

        if which not in self._models:
            path = self._whole() if which == "whole" else self.model_path
            self._models[which] = onnx.load(str(path))
        return self._models[which]

    def write(self, out_path: Path, keep_float: list[str] | tuple[str, ...] = (), only: list[str] | None = None) -> Any:
        """The QDQ model with `keep_float` nodes float too (or with `only` these nodes quantized)."""
        import shutil

        import onnx

        from recipekit.precision.qdq import cut

        names = self.names
        floated = set(keep_float) & names if only is None else names - set(only)
        if floated:
            model = cut(self._model("whole"), self._model("fp32"), floated, names - floated)
            onnx.save(model, str(out_path))
        else:
            shutil.copyfile(self._whole(), out_path)
        facts = {"activations": self.q.activations, "method": self.q.method, "calibration_tensors": len(self.tensors)}
        return {**summary(out_path), **facts}


def summary(path: Path) -> dict[str, Any]:
    """Counts of Q/DQ nodes and of the ops whose inputs they feed."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    dq_out = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    fed: dict[str, int] = {}
    for n in model.graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear") and any(i in dq_out for i in n.input):
            fed[n.op_type] = fed.get(n.op_type, 0) + 1
    ops = [n.op_type for n in model.graph.node]
    return {
        "quantize_linear": ops.count("QuantizeLinear"),
        "dequantize_linear": ops.count("DequantizeLinear"),
        "quantized_ops": dict(sorted(fed.items())),
    }
