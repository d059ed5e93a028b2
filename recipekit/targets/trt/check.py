#!/usr/bin/env python3
"""Check a recipekit TensorRT bundle on the device: build (or load) the engine, run every golden case, compare.

Shipped as check.py inside a trt-jetson bundle, next to compare.py (recipekit's own comparison), so
the device judges outputs exactly as recipekit's gates do. Imports only numpy, plus tensorrt and
cuda-python (backend trt) or onnxruntime (backend ort): nothing from recipekit.

    python3 check.py --backend trt [--engine model.engine]   # on the Jetson
    python3 check.py --backend ort                           # anywhere, as a reference run

Exit status: 0 every case within tolerance; 1 a mismatch; 2 damaged or unusable bundle;
3 the backend cannot run here (its package is missing or there is no GPU).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

OK, MISMATCH, DAMAGED, NO_BACKEND = 0, 1, 2, 3


class BackendMissing(Exception):
    """The backend's package or device is not available here."""


def verify_checksums(root: Path) -> list[str]:
    """Files listed in SHA256SUMS that are missing or differ."""
    sums = root / "SHA256SUMS"
    if not sums.is_file():
        return ["SHA256SUMS missing"]
    bad = []
    for line in sums.read_text().splitlines():
        digest, _, rel = line.partition("  ")
        path = root / rel
        if not path.is_file():
            bad.append(f"{rel}: missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            bad.append(f"{rel}: sha256 differs")
    return bad


class OrtBackend:
    """ONNX Runtime on the CPU: the reference run of the same golden cases."""

    def __init__(self, root: Path, spec: dict[str, Any]) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendMissing(f"onnxruntime is not installed ({exc})") from None
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(root / spec["model"]), opts, providers=["CPUExecutionProvider"])
        self.input, self.outputs = spec["input"], spec["outputs"]
        self.name = f"onnxruntime {ort.__version__} CPU"

    def run(self, x: Any, profile: int) -> list[Any]:
        return self.session.run(self.outputs, {self.input: x})


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as exc:
            raise BackendMissing(f"cuda-python is not installed ({exc}); pip3 install cuda-python") from None
    return cudart


def _ok(result: Any) -> Any:
    err, *rest = result
    if int(err) != 0:
        raise RuntimeError(f"CUDA runtime error {err}")
    return rest[0] if len(rest) == 1 else rest


class TrtBackend:
    """TensorRT on this device: the engine from --engine, else built here from model.onnx and profiles."""

    def __init__(self, root: Path, spec: dict[str, Any], engine: str | None) -> None:
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise BackendMissing(f"tensorrt is not installed ({exc})") from None
        self.trt, self.rt, self.spec = trt, _cudart(), spec
        self.logger = trt.Logger(trt.Logger.WARNING)
        data = (root / engine).read_bytes() if engine else build_engine(trt, self.logger, root, spec)
        self.engine = trt.Runtime(self.logger).deserialize_cuda_engine(data)
        if self.engine is None:
            raise RuntimeError("TensorRT could not deserialize the engine (built by another TensorRT version?)")
        self.context = self.engine.create_execution_context()
        self.stream = _ok(self.rt.cudaStreamCreate())
        self.name = f"TensorRT {trt.__version__}"

    def run(self, x: Any, profile: int) -> list[Any]:
        import numpy as np

        trt, rt, ctx = self.trt, self.rt, self.context
        ctx.set_optimization_profile_async(profile, self.stream)
        ctx.set_input_shape(self.spec["input"], tuple(x.shape))
        x = np.ascontiguousarray(x, dtype=trt.nptype(self.engine.get_tensor_dtype(self.spec["input"])))
        ptrs = [upload(rt, x)]
        try:
            ctx.set_tensor_address(self.spec["input"], ptrs[0])
            hosts = []
            for name in self.spec["outputs"]:
                hosts.append(
                    np.empty(tuple(ctx.get_tensor_shape(name)), trt.nptype(self.engine.get_tensor_dtype(name)))
                )
                ptrs.append(int(_ok(rt.cudaMalloc(max(hosts[-1].nbytes, 1)))))
                ctx.set_tensor_address(name, ptrs[-1])
            if not ctx.execute_async_v3(self.stream):
                raise RuntimeError("execute_async_v3 failed")
            for host, ptr in zip(hosts, ptrs[1:]):  # noqa: B905 - runs on Python 3.8 (JetPack 5)
                _ok(
                    rt.cudaMemcpyAsync(
                        host.ctypes.data, ptr, host.nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream
                    )
                )
            _ok(rt.cudaStreamSynchronize(self.stream))
            return hosts
        finally:
            for ptr in ptrs:
                _ok(rt.cudaFree(ptr))


def upload(rt: Any, arr: Any) -> int:
    ptr = int(_ok(rt.cudaMalloc(max(arr.nbytes, 1))))
    _ok(rt.cudaMemcpy(ptr, arr.ctypes.data, arr.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice))
    return ptr


def build_engine(trt: Any, logger: Any, root: Path, spec: dict[str, Any]) -> bytes:
    """The same build as trtexec.sh, through the Python API; saves the engine and the timing cache."""
    builder = trt.Builder(logger)
    flags = (
        0 if int(trt.__version__.split(".")[0]) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    )
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(root / spec["model"])):
        raise RuntimeError("ONNX parser: " + "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(spec["workspace_mib"]) << 20)
    made = []
    for p in spec["profiles"]:
        made.append(builder.create_optimization_profile())
        made[-1].set_shape(p["input"], p["min"], p["opt"], p["max"])
        config.add_optimization_profile(made[-1])
    if spec["precision"]["fp16"]:
        config.set_flag(trt.BuilderFlag.FP16)
    if spec["precision"]["int8"]:
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator(trt, root, spec)
        config.set_calibration_profile(made[0])
    cache_path = root / spec["timing_cache"]
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    data = builder.build_serialized_network(network, config)
    if data is None:
        raise RuntimeError("TensorRT's builder returned no engine (see its log above)")
    cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    (root / spec["engine"]).write_bytes(bytes(data))
    return bytes(data)


def calibrator(trt: Any, root: Path, spec: dict[str, Any]) -> Any:
    """Entropy calibrator 2 over the bundle's calibration batches; writes calibration.cache for trtexec."""
    import numpy as np

    with np.load(root / spec["calibration"]) as z:
        batches = [np.ascontiguousarray(z[k]) for k in sorted(z.files, key=lambda k: int(k[1:]))]
    rt, cache = _cudart(), root / spec["calibration_cache"]

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.pending, self.ptr = list(batches), None

        def get_batch_size(self) -> int:
            return int(batches[0].shape[0])

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.ptr is not None:
                _ok(rt.cudaFree(self.ptr))
                self.ptr = None
            if not self.pending:
                return None
            self.ptr = upload(rt, self.pending.pop(0))
            return [self.ptr]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            cache.write_bytes(bytes(data))

    return Calibrator()


def compare_case(spec: dict[str, Any], refs: list[Any], gots: list[Any], image_hw: Any = None) -> list[dict[str, Any]]:
    """compare.py's own verdicts, by the output semantics and tolerance layers bundle.json declares."""
    import compare

    return compare.compare_outputs(
        spec["outputs"], refs, gots, spec.get("output_kinds"), spec.get("tolerances"), image_hw
    )


def run_cases(root: Path, spec: dict[str, Any], backend: Any) -> list[dict[str, Any]]:
    import numpy as np

    rows = []
    for case in spec["cases"]:
        with np.load(root / case["file"]) as z:
            x, refs = z["input"], [z[f"out{j}"] for j in range(len(spec["outputs"]))]
        try:
            gots = backend.run(x, case["profile"])
            results = compare_case(spec, refs, gots, tuple(case["shape"]))
        except Exception as exc:  # noqa: BLE001 - a crash at one batch size is a result, not the end
            results = [{"output": "*", "kind": "-", "passed": False, "reason": f"{type(exc).__name__}: {exc}"}]
        rows += [{"shape": "x".join(map(str, case["shape"])), "batch": case["batch"], **r} for r in results]
    return rows


def figure(row: dict[str, Any]) -> str:
    for key in ("max_abs", "box_px_max"):
        if key in row:
            return f"{key}={row[key]:.3g}"
    return "-"


def print_table(rows: list[dict[str, Any]], backend: str) -> None:
    print(f"backend: {backend}")
    print(f"{'shape':>9} {'batch':>5}  {'output':<20} {'kind':<10} {'worst':<22} verdict")
    for r in rows:
        verdict = "ok" if r["passed"] else "MISMATCH: " + str(r.get("reason", ""))
        print(
            f"{r['shape']:>9} {r['batch']:>5}  {str(r['output'])[:20]:<20} {str(r.get('kind', '')):<10} {figure(r):<22} {verdict}"
        )
    failed = sum(not r["passed"] for r in rows)
    print(f"{len(rows) - failed}/{len(rows)} comparisons within tolerance")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("trt", "ort"), default="trt")
    ap.add_argument("--engine", help="a serialized engine (e.g. from trtexec.sh), relative to the bundle")
    ap.add_argument("--json", help="also write the rows as JSON to this file")
    args = ap.parse_args(argv)
    bad = verify_checksums(HERE)
    if bad:
        print("bundle damaged: " + "; ".join(bad), file=sys.stderr)
        return DAMAGED
    spec = json.loads((HERE / "bundle.json").read_text())
    try:
        backend = OrtBackend(HERE, spec) if args.backend == "ort" else TrtBackend(HERE, spec, args.engine)
    except BackendMissing as exc:
        print(f"backend {args.backend} unavailable: {exc}", file=sys.stderr)
        return NO_BACKEND
    rows = run_cases(HERE, spec, backend)
    print_table(rows, backend.name)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return OK if rows and all(r["passed"] for r in rows) else MISMATCH


if __name__ == "__main__":
    sys.exit(main())
