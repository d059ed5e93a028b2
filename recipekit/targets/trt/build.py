"""The real TensorRT build and run, through TensorRT's Python API (`recipekit[tensorrt]`).

tensorrt and cuda-python are imported only inside these functions. `probe` is the one place that
decides whether an engine can be built here: an importable tensorrt AND a CUDA GPU seen through the
driver (cuda-python, else nvidia-smi; never torch). Without both, `Unavailable(reason)` is raised
and nothing pretends an engine was built. An engine is tied to the GPU and TensorRT version it was
built with, so `environment_key` (TensorRT, CUDA, GPU name, compute capability) goes into the key.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core.errors import RecipeKitError, Unavailable
from recipekit.onnx.runtime import Runner

if TYPE_CHECKING:
    import numpy as np

    from recipekit.targets.trt.profiles import ShapeProfile


SUPPORTED_MAJORS = (10, 11)
"""The TensorRT generations the trt target builds with (the `tensorrt` extra's pinned range)."""


class EngineBuildError(RecipeKitError):
    """TensorRT's parser or builder refused the network; carries TensorRT's own messages."""

    exit_code = 1


def _tensorrt() -> tuple[Any, str | None]:
    try:
        import tensorrt as trt
    except (ImportError, OSError) as exc:
        return None, f"tensorrt cannot be imported ({exc}); install it with: pip install 'recipekit[tensorrt]'"
    return trt, None


def _cuda_driver() -> Any:
    try:
        from cuda.bindings import driver
    except ImportError:
        from cuda import cuda as driver  # cuda-python < 12.6
    return driver


def _gpu_cuda_python() -> dict[str, Any]:
    """GPU 0 seen through the CUDA driver API; raises RuntimeError with the driver's reason."""
    drv = _cuda_driver()
    (err,) = drv.cuInit(0)
    if int(err) != 0:
        raise RuntimeError(f"cuInit failed: {err}")
    err, count = drv.cuDeviceGetCount()
    if int(err) != 0 or count < 1:
        raise RuntimeError(f"no CUDA device (cuDeviceGetCount: {err}, count {count})")
    _, dev = drv.cuDeviceGet(0)
    _, name = drv.cuDeviceGetName(64, dev)
    attr = drv.CUdevice_attribute
    _, major = drv.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev)
    _, minor = drv.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)
    _, version = drv.cuDriverGetVersion()
    return {
        "gpu": name.split(b"\0")[0].decode(),
        "compute_capability": f"{major}.{minor}",
        "cuda_driver": f"{version // 1000}.{version % 1000 // 10}",
        "devices": count,
    }


def _gpu_nvidia_smi() -> dict[str, Any]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        raise RuntimeError("nvidia-smi not found")
    out = subprocess.run(
        [exe, "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    line = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""
    if not line:
        raise RuntimeError(f"nvidia-smi lists no GPU ({out.stderr.strip() or out.returncode})")
    name, cc, driver = (s.strip() for s in line.split(","))
    return {"gpu": name, "compute_capability": cc, "nvidia_driver": driver}


def _gpu() -> tuple[dict[str, Any] | None, str | None]:
    reasons = []
    for how, probe_fn in (("cuda-python", _gpu_cuda_python), ("nvidia-smi", _gpu_nvidia_smi)):
        try:
            return {**probe_fn(), "seen_by": how}, None
        except Exception as exc:  # noqa: BLE001 - any driver/loader failure means "no GPU here"
            reasons.append(f"{how}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    return None, "no CUDA GPU found (" + "; ".join(reasons) + ")"


@lru_cache(maxsize=1)
def probe() -> dict[str, Any]:
    """TensorRT version and GPU facts, or {"unavailable": reason}. Cached: it loads the driver."""
    trt, trt_reason = _tensorrt()
    gpu, gpu_reason = _gpu()
    reasons = [r for r in (trt_reason, gpu_reason) if r]
    if reasons:
        return {"unavailable": "TensorRT engine cannot be built on this machine: " + "; ".join(reasons)}
    major = int(trt.__version__.split(".")[0])
    if major not in SUPPORTED_MAJORS:
        return {"unavailable": f"TensorRT {trt.__version__} is not supported here (10.x or 11.x; 8.x: trt-jetson)"}
    return {"tensorrt": trt.__version__, **gpu}


def require() -> dict[str, Any]:
    """The environment facts, or raise Unavailable with the reason."""
    env = probe()
    if "unavailable" in env:
        raise Unavailable(env["unavailable"])
    return env


def strongly_typed(version: str, precision: str) -> bool:
    """10.x builds strongly typed (precision from the ONNX: its fp16 weights or QDQ nodes) unless the
    ONNX is plain fp32; 11.x is always strongly typed ("Strongly typed mode is always enabled")."""
    return int(version.split(".")[0]) >= 11 or precision != "fp32"


def network_flags(trt: Any, precision: str) -> int:
    """Network creation flags: STRONGLY_TYPED on 10.x when the ONNX carries its precision; none on 11."""
    if int(trt.__version__.split(".")[0]) >= 11 or not strongly_typed(trt.__version__, precision):
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def build_engine(
    onnx_path: Path, profiles: list[ShapeProfile], *, precision: str, workspace_mib: int, timing_cache: Path
) -> bytes:
    """The plain serialized engine: parse, one IOptimizationProfile per profile, timing cache.

    No precision builder flags and no calibrator: the ONNX carries its precision (export.precision)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, precision))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError("TensorRT's ONNX parser refused the model: " + "; ".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    for p in profiles:
        profile = builder.create_optimization_profile()
        profile.set_shape(p.input, p.min, p.opt, p.max)
        config.add_optimization_profile(profile)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError("TensorRT's builder returned no engine (see the TensorRT log above)")
    _save_atomic(timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def _save_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class TrtRunner(Runner):
    """Runs a serialized engine for the gates: picks the profile that admits the input's dims."""

    def __init__(self, engine_path: Path, profiles: list[dict[str, Any]]) -> None:
        import tensorrt as trt

        from recipekit.targets.trt.device import Device

        self.trt, self.device = trt, Device()
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise EngineBuildError(f"TensorRT could not deserialize {engine_path}")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_in = [self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names]
        self.input_names = [n for n, i in zip(names, is_in, strict=True) if i]
        self.output_names = [n for n, i in zip(names, is_in, strict=True) if not i]
        self.profiles = profiles
        self.description = f"TensorRT {trt.__version__} engine on {probe().get('gpu')}"

    def _profile_for(self, dims: tuple[int, ...]) -> int:
        for k, p in enumerate(self.profiles):
            if all(a <= d <= b for a, d, b in zip(p["min"], dims, p["max"], strict=True)):
                return k
        raise EngineBuildError(f"input dims {list(dims)} fit no optimization profile of the engine: {self.profiles}")

    def run(self, feeds: dict[str, np.ndarray], extra_outputs: list[str] | None = None) -> list[np.ndarray]:
        if extra_outputs:
            raise EngineBuildError("a TensorRT engine exposes only its declared outputs")
        x = feeds[self.input_names[0]]
        self.context.set_optimization_profile_async(self._profile_for(tuple(x.shape)), self.device.stream)
        for name, arr in feeds.items():
            self.context.set_input_shape(name, tuple(arr.shape))
        return self.device.execute(self.context, self.engine, feeds, self.output_names)
