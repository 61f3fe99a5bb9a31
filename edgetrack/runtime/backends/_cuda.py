"""CUDA memory and streams for the TensorRT code: cuda-python when installed, else pycuda.

The only module that imports ``cuda`` (cuda-python: ``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6)
or ``pycuda``. Both are wrapped in the same small interface: device buffers allocated once, host<->device copies
on one stream, the device's name and compute capability.
"""
from __future__ import annotations

import numpy as np

from ...errors import BackendUnavailableError, missing_extra


def _cuda_python_runtime():
    try:
        from cuda.bindings import runtime
    except ImportError:
        from cuda import cudart as runtime  # cuda-python < 12.6
    return runtime


class CudaPython:
    """cuda-python's runtime API: every call returns ``(error, *results)``."""

    library = "cuda-python"

    def __init__(self, runtime, device: int) -> None:
        self._rt = runtime
        self.device = device
        count = self._call(runtime.cudaGetDeviceCount(), "count CUDA devices")
        if device >= count:
            raise BackendUnavailableError(f"CUDA device {device} does not exist; this machine has {count}")
        self.activate()
        self.stream = self._call(runtime.cudaStreamCreate(), "create a CUDA stream")

    def _call(self, result, what: str):
        err, rest = result[0], result[1:]
        if err != self._rt.cudaError_t.cudaSuccess:
            msg = self._rt.cudaGetErrorString(err)[1]
            msg = msg.decode() if isinstance(msg, bytes) else str(msg)
            raise BackendUnavailableError(f"CUDA could not {what} on device {self.device}: {msg}")
        return rest[0] if len(rest) == 1 else rest

    def activate(self) -> None:
        self._call(self._rt.cudaSetDevice(self.device), "select the device")

    def device_info(self) -> tuple[str, tuple[int, int]]:
        prop = self._call(self._rt.cudaGetDeviceProperties(self.device), "read the device properties")
        name = prop.name.split(b"\0")[0].decode() if isinstance(prop.name, bytes) else str(prop.name)
        return name.strip(), (int(prop.major), int(prop.minor))

    def malloc(self, nbytes: int) -> int:
        return int(self._call(self._rt.cudaMalloc(max(1, nbytes)), f"allocate {nbytes} bytes"))

    def free(self, ptr: int) -> None:
        self._rt.cudaFree(ptr)

    def to_device(self, ptr: int, array: np.ndarray) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call(self._rt.cudaMemcpyAsync(ptr, array.ctypes.data, array.nbytes, kind, self.stream), "copy in")

    def to_host(self, array: np.ndarray, ptr: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call(self._rt.cudaMemcpyAsync(array.ctypes.data, ptr, array.nbytes, kind, self.stream), "copy out")

    @property
    def stream_handle(self) -> int:
        return int(self.stream)

    def synchronize(self) -> None:
        self._call(self._rt.cudaStreamSynchronize(self.stream), "finish the stream")

    def close(self) -> None:
        self._rt.cudaStreamDestroy(self.stream)


class PyCuda:
    """pycuda's driver API on the device's primary context (the one TensorRT's runtime uses)."""

    library = "pycuda"

    def __init__(self, driver, device: int) -> None:
        self._drv = driver
        self.device = device
        try:
            driver.init()
            count = driver.Device.count()
            if device >= count:
                raise BackendUnavailableError(f"CUDA device {device} does not exist; this machine has {count}")
            self._dev = driver.Device(device)
            self._ctx = self._dev.retain_primary_context()
            self._ctx.push()
            self.stream = driver.Stream()
        except driver.Error as exc:
            raise BackendUnavailableError(f"CUDA device {device} is not usable through pycuda: {exc}") from exc
        self._buffers: dict[int, object] = {}

    def activate(self) -> None:
        if self._drv.Context.get_current() != self._ctx:
            self._ctx.push()

    def device_info(self) -> tuple[str, tuple[int, int]]:
        return self._dev.name().strip(), tuple(int(v) for v in self._dev.compute_capability())

    def malloc(self, nbytes: int) -> int:
        buf = self._drv.mem_alloc(max(1, nbytes))
        self._buffers[int(buf)] = buf  # keep the allocation alive until free()
        return int(buf)

    def free(self, ptr: int) -> None:
        buf = self._buffers.pop(ptr, None)
        if buf is not None:
            buf.free()

    def to_device(self, ptr: int, array: np.ndarray) -> None:
        self._drv.memcpy_htod_async(ptr, array, self.stream)

    def to_host(self, array: np.ndarray, ptr: int) -> None:
        self._drv.memcpy_dtoh_async(array, ptr, self.stream)

    @property
    def stream_handle(self) -> int:
        return int(self.stream.handle)

    def synchronize(self) -> None:
        self.stream.synchronize()

    def close(self) -> None:
        for ptr in list(self._buffers):
            self.free(ptr)
        self._ctx.pop()


def open_cuda(device: int, what: str = "the tensorrt backend") -> CudaPython | PyCuda:
    """CUDA on ``device`` through cuda-python, else pycuda; BackendUnavailableError naming the extra if neither."""
    try:
        return CudaPython(_cuda_python_runtime(), device)
    except ImportError:
        pass
    try:
        import pycuda.driver as driver
    except ImportError as exc:
        raise missing_extra("cuda-python", "tensorrt", f"{what} (a CUDA GPU with cuda-python or pycuda)") from exc
    return PyCuda(driver, device)


def cuda_device_count() -> int:
    """How many CUDA devices answer (0 when no driver, no GPU or no CUDA Python package); never raises."""
    try:
        runtime = _cuda_python_runtime()
        err, count = runtime.cudaGetDeviceCount()
        return int(count) if err == runtime.cudaError_t.cudaSuccess else 0
    except ImportError:
        pass
    except Exception:  # a broken install: treat as no GPU
        return 0
    try:
        import pycuda.driver as driver

        driver.init()
        return int(driver.Device.count())
    except Exception:
        return 0
