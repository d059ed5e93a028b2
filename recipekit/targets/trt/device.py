"""GPU memory for the TensorRT target, through cuda-python's runtime API.

Imported only when an engine is run (cuda-python and numpy are imported here inside functions).
There is no INT8 calibrator: INT8 comes from the QDQ ONNX of the precision step (TensorRT 11 has
no implicit calibration at all).
"""

from __future__ import annotations

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
