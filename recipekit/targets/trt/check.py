#!/usr/bin/env python3
"""Check a recipekit TensorRT bundle on the device: build (or load) the engine, run every golden case, compare.

Shipped as check.py inside a trt-jetson bundle, next to compare/ (recipekit's comparison package), so
the device judges outputs exactly as recipekit's gates do. Imports only numpy, plus tensorrt and
cuda-python (backend trt) or onnxruntime (backend ort): nothing from recipekit.

    python3 check.py --backend trt [--engine model.engine]   # on the Jetson
    python3 check.py --backend ort                           # anywhere, as a reference run
    python3 check.py --image photo.jpg [--size 640x640]      # preprocess as recipekit does, run, print outputs
    python3 check.py --preprocess a.png b.jpg --out tensors/ # only write the input tensors (.npy)

Images are preprocessed by pixels.py (shipped beside this file): recipekit's own preprocessing, the
same bits its gates and its browser viewer compute.

Exit status: 0 every case within tolerance; 1 a mismatch; 2 damaged or unusable bundle;
3 the backend cannot run here (its package is missing or there is no GPU).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
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

    def run(self, x: Any, where: dict[str, Any]) -> list[Any]:
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
    """TensorRT on this device: the engines of the plan for its TensorRT generation, loaded from
    --engine (one-engine plans) or the bundle folder, else built here from model.onnx."""

    def __init__(self, root: Path, spec: dict[str, Any], plan: dict[str, Any], engine: str | None) -> None:
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise BackendMissing(f"tensorrt is not installed ({exc})") from None
        self.trt, self.rt, self.spec, self.root = trt, _cudart(), spec, root
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.engines: dict[str, Any] = {}
        self.given = engine if engine and len(plan["engines"]) == 1 else None
        self.plan = {item["engine"]: item for item in plan["engines"]}
        self.strongly_typed = bool(plan["strongly_typed"])
        self.stream = _ok(self.rt.cudaStreamCreate())
        self.name = f"TensorRT {trt.__version__}"

    def _context(self, engine: str) -> tuple[Any, Any]:
        if engine not in self.engines:
            trt, path = self.trt, self.root / (self.given or engine)
            data = (
                path.read_bytes()
                if path.is_file()
                else build_engine(trt, self.logger, self.root, self.spec, self.plan[engine], self.strongly_typed)
            )
            loaded = trt.Runtime(self.logger).deserialize_cuda_engine(data)
            if loaded is None:
                raise RuntimeError(f"TensorRT could not deserialize {engine} (built by another TensorRT version?)")
            self.engines[engine] = (loaded, loaded.create_execution_context())
        return self.engines[engine]

    def run(self, x: Any, where: dict[str, Any]) -> list[Any]:
        import numpy as np

        trt, rt = self.trt, self.rt
        engine, ctx = self._context(where["engine"])
        ctx.set_optimization_profile_async(where["profile"], self.stream)
        ctx.set_input_shape(self.spec["input"], tuple(x.shape))
        x = np.ascontiguousarray(x, dtype=trt.nptype(engine.get_tensor_dtype(self.spec["input"])))
        ptrs = [upload(rt, x)]
        try:
            ctx.set_tensor_address(self.spec["input"], ptrs[0])
            hosts = []
            for name in self.spec["outputs"]:
                hosts.append(np.empty(tuple(ctx.get_tensor_shape(name)), trt.nptype(engine.get_tensor_dtype(name))))
                ptrs.append(int(_ok(rt.cudaMalloc(max(hosts[-1].nbytes, 1)))))
                ctx.set_tensor_address(name, ptrs[-1])
            if not ctx.execute_async_v3(self.stream):
                raise RuntimeError("execute_async_v3 failed")
            for host, ptr in zip(hosts, ptrs[1:]):  # noqa: B905 - runs on Python 3.8 (JetPack 5)
                kind = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
                _ok(rt.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes, kind, self.stream))
            _ok(rt.cudaStreamSynchronize(self.stream))
            return hosts
        finally:
            for ptr in ptrs:
                _ok(rt.cudaFree(ptr))


def upload(rt: Any, arr: Any) -> int:
    ptr = int(_ok(rt.cudaMalloc(max(arr.nbytes, 1))))
    _ok(rt.cudaMemcpy(ptr, arr.ctypes.data, arr.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice))
    return ptr


def tensorrt_version() -> str | None:
    """The version probe: the TensorRT installed on this device, or None.

    RECIPEKIT_TENSORRT_VERSION overrides it (a device with trtexec but without TensorRT's Python
    bindings); else the Python bindings; else JetPack's NvInferVersion.h."""
    forced = os.environ.get("RECIPEKIT_TENSORRT_VERSION")
    if forced:
        return forced
    try:
        import tensorrt

        return str(tensorrt.__version__)
    except ImportError:
        pass
    for arch in ("aarch64", "x86_64"):
        header = Path(f"/usr/include/{arch}-linux-gnu/NvInferVersion.h")
        if header.is_file():
            found = dict(re.findall(r"#define NV_TENSORRT_(MAJOR|MINOR|PATCH) (\d+)", header.read_text()))
            if len(found) == 3:
                return "{MAJOR}.{MINOR}.{PATCH}".format(**found)
    return None


def version_parts(version: str) -> tuple[int, ...]:
    """(10, 13, 3, 9) from "10.13.3.9", "10.13.3.9.post1" or JetPack's "8.5.2-1+cuda11.4"."""
    found = re.match(r"\d+(?:\.\d+)*", str(version).strip())
    if found is None:
        raise ValueError(f"TensorRT version {version!r} is not a version number")
    return tuple(int(x) for x in found.group(0).split("."))


def generation(version: str) -> str:
    """The API generation: 8 (8.5/8.6), 10 or 11; anything else is not supported."""
    major = version_parts(version)[0]
    if major not in (8, 10, 11):
        raise ValueError(f"TensorRT {version} is not supported by this bundle (8.5/8.6, 10.x, 11.x)")
    return str(major)


def network_flags(trt: Any, gen: str, strongly_typed: bool) -> int:
    """8.x: explicit batch (precision from builder flags); 10.x: strongly typed as the plan says (an
    fp16/QDQ ONNX, and every network from 10.12); 11.x: always strongly typed, no flag."""
    if gen == "8":
        return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if gen == "10" and strongly_typed:
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0


def build_engine(
    trt: Any, logger: Any, root: Path, spec: dict[str, Any], item: dict[str, Any], strongly_typed: bool
) -> bytes:
    """The same build as the trtexec line of `item`, through the Python API; saves engine and timing cache."""
    gen, precision = generation(trt.__version__), spec["precision"]
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, gen, strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(root / spec["model"])):
        raise RuntimeError("ONNX parser: " + "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(spec["workspace_mib"]) << 20)
    for k in item["profiles"]:
        p = spec["profiles"][k]
        profile = builder.create_optimization_profile()
        profile.set_shape(p["input"], p["min"], p["opt"], p["max"])
        config.add_optimization_profile(profile)
    if gen == "8" and precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    if gen == "8" and precision == "int8":  # explicit quantization: the QDQ scales, no calibrator
        config.set_flag(trt.BuilderFlag.INT8)
    cache_path = root / spec["timing_cache"]
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    data = builder.build_serialized_network(network, config)
    if data is None:
        raise RuntimeError("TensorRT's builder returned no engine (see its log above)")
    cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    (root / item["engine"]).write_bytes(bytes(data))
    return bytes(data)


def choose_plan(spec: dict[str, Any], version: str | None) -> tuple[str | None, dict[str, Any]]:
    """The plan for this device's TensorRT: the one of bundle.json's `plans` whose range holds the
    version (one engine per profile on 8.x, one with every profile on 10/11). Without TensorRT (an ort
    run anywhere) the default plan is shown."""
    if version is None:
        return None, next(p for p in spec["plans"] if p["id"] == spec["default_plan"])
    found = version_parts(version)
    for plan in spec["plans"]:
        if tuple(plan["first"]) <= found < tuple(plan["below"]):
            return generation(version), plan
    planned = "; ".join(f"{p['title']}: >= {_dotted(p['first'])}, < {_dotted(p['below'])}" for p in spec["plans"])
    raise ValueError(f"TensorRT {version} is not one this bundle plans for ({planned})")


def _dotted(parts: list[int]) -> str:
    return ".".join(map(str, parts))


def locate(plan: list[dict[str, Any]], profile: int) -> dict[str, Any]:
    """Which engine serves a bundle profile, and that profile's index inside the engine."""
    for item in plan:
        if profile in item["profiles"]:
            return {"engine": item["engine"], "profile": item["profiles"].index(profile)}
    raise KeyError(f"no engine of the plan holds profile {profile}")


def run_trtexec(plan: list[dict[str, Any]]) -> int:
    """Run the plan's trtexec lines from the bundle folder (trtexec.sh)."""
    for item in plan:
        print(item["trtexec"], flush=True)
        code = subprocess.run(item["trtexec"], shell=True, cwd=HERE, check=False).returncode
        if code:
            return code
    return 0


def compare_case(spec: dict[str, Any], refs: list[Any], gots: list[Any], image_hw: Any = None) -> list[dict[str, Any]]:
    """The compare package's own verdicts, by the output semantics and tolerance layers bundle.json declares."""
    import compare

    return compare.compare_outputs(
        spec["outputs"], refs, gots, spec.get("output_kinds"), spec.get("tolerances"), image_hw
    )


def run_cases(root: Path, spec: dict[str, Any], backend: Any, plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import numpy as np

    rows = []
    for case in spec["cases"]:
        with np.load(root / case["file"]) as z:
            x, refs = z["input"], [z[f"out{j}"] for j in range(len(spec["outputs"]))]
        where = locate(plan, case["profile"])
        try:
            gots = backend.run(x, where)
            results = compare_case(spec, refs, gots, tuple(case["shape"]))
        except Exception as exc:  # noqa: BLE001 - a crash at one batch size is a result, not the end
            results = [{"output": "*", "kind": "-", "passed": False, "reason": f"{type(exc).__name__}: {exc}"}]
        shape = "x".join(map(str, case["shape"]))
        rows += [{"shape": shape, "batch": case["batch"], "engine": where["engine"], **r} for r in results]
    return rows


def read_image(path: Path) -> Any:
    """An image file as HxWx3 uint8 BGR: OpenCV when installed (JetPack ships it), else Pillow."""
    import numpy as np

    try:
        import cv2
    except ImportError:
        from PIL import Image

        with Image.open(path) as im:
            return np.ascontiguousarray(np.asarray(im.convert("RGB"))[..., ::-1])
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: not a readable image")
    return img


def image_inputs(spec: dict[str, Any], paths: list[str], size: str | None) -> list[tuple[str, Any, Any]]:
    """(name, tensor, geometry) per image, preprocessed as bundle.json declares; the size is `size`
    (HxW), else the one a deployment picks for the image (pixels.deployed_size)."""
    import pixels

    pre, shapes = spec["preprocess"], spec.get("input_shapes") or [spec["profiles"][0]["opt"][2:]]
    out = []
    for name in paths:
        img = read_image(Path(name))
        hw = [int(v) for v in size.split("x")] if size else pixels.deployed_size(*img.shape[:2], pre, shapes)
        x, geo = pixels.tensor(img, hw, pre, spec.get("dtype", "float32"))
        out.append((name, x, geo))
    return out


def run_images(spec: dict[str, Any], args: Any, backend_of: Any) -> int:
    """--preprocess: write each image's input tensor to --out; --image: run it and print the outputs."""
    import numpy as np

    try:
        inputs = image_inputs(spec, args.preprocess or args.image, args.size)
    except (OSError, ValueError) as exc:
        print(f"cannot preprocess: {exc}", file=sys.stderr)
        return DAMAGED
    if args.preprocess:
        folder = Path(args.out or ".")
        folder.mkdir(parents=True, exist_ok=True)
        for name, x, _ in inputs:
            np.save(folder / (Path(name).stem + ".npy"), x)
            print(f"{name}: input {list(x.shape)} -> {folder / (Path(name).stem + '.npy')}")
        return OK
    try:
        backend, plan = backend_of()
    except BackendMissing as exc:
        print(f"backend {args.backend} unavailable: {exc}", file=sys.stderr)
        return NO_BACKEND
    for name, x, geo in inputs:
        where = locate(plan, 0) if plan else {}
        outs = backend.run(x, where)
        shapes = ", ".join(f"{n} {list(o.shape)}" for n, o in zip(spec["outputs"], outs))  # noqa: B905 - Python 3.8
        print(f"{name}: input {list(x.shape)} (ratio {geo['ratio']}, pad {geo['pad']}) -> {shapes}")
    return OK


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
            f"{r['shape']:>9} {r['batch']:>5}  {str(r['output'])[:20]:<20} {str(r.get('kind', '')):<10} "
            f"{figure(r):<22} {verdict}"
        )
    failed = sum(not r["passed"] for r in rows)
    print(f"{len(rows) - failed}/{len(rows)} comparisons within tolerance")


def make_backend(args: Any, spec: dict[str, Any], plan: dict[str, Any]) -> Any:
    return OrtBackend(HERE, spec) if args.backend == "ort" else TrtBackend(HERE, spec, plan, args.engine)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("trt", "ort"), default="trt")
    ap.add_argument("--engine", help="a serialized engine (e.g. from trtexec.sh), relative to the bundle")
    ap.add_argument("--trtexec", action="store_true", help="build the engines with trtexec (what trtexec.sh does)")
    ap.add_argument("--json", help="also write the rows as JSON to this file")
    ap.add_argument("--image", nargs="+", help="run these images (preprocessed as bundle.json declares) instead")
    ap.add_argument("--preprocess", nargs="+", help="only preprocess these images; tensors go to --out as .npy")
    ap.add_argument("--out", help="folder for --preprocess tensors (default: here)")
    ap.add_argument("--size", help="HxW to preprocess at (default: the size a deployment picks per image)")
    args = ap.parse_args(argv)
    bad = verify_checksums(HERE)
    if bad:
        print("bundle damaged: " + "; ".join(bad), file=sys.stderr)
        return DAMAGED
    spec = json.loads((HERE / "bundle.json").read_text())
    version = tensorrt_version()
    try:
        gen, plan = choose_plan(spec, version)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return NO_BACKEND
    if args.trtexec:
        return run_trtexec(plan["engines"])
    if args.image or args.preprocess:
        return run_images(spec, args, lambda: (make_backend(args, spec, plan), plan["engines"]))
    shown = plan["title"] + ("" if version else ", shown without TensorRT")
    print(
        f"TensorRT: {version or 'not found'}; engine plan: {shown}: " + ", ".join(i["engine"] for i in plan["engines"])
    )
    try:
        backend = make_backend(args, spec, plan)
    except BackendMissing as exc:
        print(f"backend {args.backend} unavailable: {exc}", file=sys.stderr)
        return NO_BACKEND
    rows = run_cases(HERE, spec, backend, plan["engines"])
    print_table(rows, backend.name)
    if args.json:
        doc = {"tensorrt": version, "generation": gen, "plan": plan["id"], "rows": rows}
        Path(args.json).write_text(json.dumps(doc, indent=1, default=str))
    return OK if rows and all(r["passed"] for r in rows) else MISMATCH


if __name__ == "__main__":
    sys.exit(main())
