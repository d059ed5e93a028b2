"""GPU memory and the INT8 calibrator for the TensorRT target, through cuda-python's runtime API.

Imported only when an engine is built or run (tensorrt, cuda-python and numpy are imported here
inside functions). The calibration cache sits next to the timing cache in recipekit's state
folder, keyed by the same environment, so a rebuild does not re-calibrate.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from recipekit.core.errors import RecipeKitError

if TYPE_CHECKING:
    import numpy as np


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        from cuda import cudart  # cuda-python < 12.6
    return cudart


def _ok(result: tuple[Any, ...]) -> Any:
    err, *rest = result
    if int(err) != 0:
        raise RecipeKitError(f"CUDA runtime error: {err}")
    return rest[0] if len(rest) == 1 else rest


class Device:
    """A CUDA stream and the device buffers of one call; every buffer is freed after the call."""

    def __init__(self) -> None:
        self.rt = _cudart()
        self.stream = _ok(self.rt.cudaStreamCreate())

    def upload(self, arr: np.ndarray) -> int:
        ptr = _ok(self.rt.cudaMalloc(max(arr.nbytes, 1)))
        _ok(self.rt.cudaMemcpy(ptr, arr.ctypes.data, arr.nbytes, self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice))
        return int(ptr)

    def free(self, ptr: int) -> None:
        _ok(self.rt.cudaFree(ptr))

    def execute(self, context: Any, engine: Any, feeds: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        """Upload inputs, run `execute_async_v3`, download outputs (shapes from the context)."""
        import numpy as np
        import tensorrt as trt

        ptrs: list[int] = []
        try:
            for name, arr in feeds.items():
                host = np.ascontiguousarray(arr, dtype=trt.nptype(engine.get_tensor_dtype(name)))
                ptrs.append(self.upload(host))
                context.set_tensor_address(name, ptrs[-1])
            hosts = []
            for name in outputs:
                hosts.append(np.empty(tuple(context.get_tensor_shape(name)), trt.nptype(engine.get_tensor_dtype(name))))
                ptrs.append(int(_ok(self.rt.cudaMalloc(max(hosts[-1].nbytes, 1)))))
                context.set_tensor_address(name, ptrs[-1])
            if not context.execute_async_v3(self.stream):
                raise RecipeKitError("TensorRT execute_async_v3 failed (see the TensorRT log)")
            for host, ptr in zip(hosts, ptrs[len(feeds) :], strict=True):
                _ok(
                    self.rt.cudaMemcpyAsync(
                        host.ctypes.data, ptr, host.nbytes, self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream
                    )
                )
            _ok(self.rt.cudaStreamSynchronize(self.stream))
            return hosts
        finally:
            for ptr in ptrs:
                self.free(ptr)


def calibrator(trt: Any, batches: list[np.ndarray], cache: Path) -> Any:
    """An IInt8EntropyCalibrator2 over the recipe's preprocessed sample images (whole batches)."""

    class _Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.pending, self.device, self.ptr = list(batches), Device(), None

        def get_batch_size(self) -> int:
            return int(batches[0].shape[0]) if batches else 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.ptr is not None:
                self.device.free(self.ptr)
                self.ptr = None
            if not self.pending:
                return None
            self.ptr = self.device.upload(self.pending.pop(0))
            return [self.ptr]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            tmp = cache.with_name(cache.name + ".tmp")
            tmp.write_bytes(bytes(data))
            tmp.replace(cache)

    return _Calibrator()
