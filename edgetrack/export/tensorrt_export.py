"""TensorRT engines from an exported ONNX folder: ``template.engine`` + ``search.engine`` + ``spec.json``.

Engines are tied to the GPU model and the TensorRT version that build them, so build on the device that will run
them (a Jetson builds its own). ``spec.json`` holds the tracker spec and the build info (TensorRT version, GPU,
compute capability, precision, DLA core, batch range); the runtime checks it before loading.

INT8 is explicit when the ONNX graphs hold QuantizeLinear/DequantizeLinear nodes (edgetrack-export's ONNX INT8);
otherwise an entropy calibrator (``IInt8EntropyCalibrator2``) is fed from a calibration set, with its cache
written next to the engines (``<graph>.calib.cache``) so a rebuild skips the calibration run. That implicit path
is what TensorRT 8.x on Jetson supports best.

The ``tensorrt`` and CUDA imports happen inside :mod:`edgetrack.runtime.backends._trt_common` and ``._cuda``;
nothing here needs torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import __version__
from ..data.fileio import atomic_write_bytes
from ..errors import InputError, ModelError
from ..runtime.backends._cuda import cuda_device_count, open_cuda
from ..runtime.backends._trt_build import build_engine
from ..runtime.backends._trt_common import (
    BuildOptions,
    build_info,
    current_target,
    import_tensorrt,
    write_engine_folder,
)
from ..runtime.model_files import locate

GRAPHS = ("template", "search")


def tensorrt_available() -> bool:
    """Whether the ``tensorrt`` Python package imports; never raises."""
    try:
        import_tensorrt()
    except Exception:
        return False
    return True


def gpu_available() -> bool:
    """Whether a CUDA GPU answers through cuda-python or pycuda; never raises."""
    try:
        return cuda_device_count() > 0
    except Exception:
        return False


def _make_calibrator(trt, cuda, inputs: dict[str, np.ndarray], cache_path: Path):
    """An IInt8EntropyCalibrator2 that feeds one sample at a time (the profile's opt batch is 1)."""
    arrays = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in inputs.items()}
    counts = {len(a) for a in arrays.values()}
    if len(counts) != 1 or 0 in counts:
        raise InputError(f"calibration inputs must hold the same number (> 0) of samples, got "
                         f"{ {n: len(a) for n, a in arrays.items()} }")

    class _Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.n, self.pos = counts.pop(), 0
            self.buffers = {name: cuda.malloc(a[0].nbytes) for name, a in arrays.items()}

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names, *_):
            if self.pos >= self.n:
                return None
            for name in names:
                if name not in arrays:
                    raise InputError(f"the calibration set has no input {name!r} (it has {sorted(arrays)})")
                cuda.to_device(self.buffers[name], arrays[name][self.pos:self.pos + 1])
            cuda.synchronize()
            self.pos += 1
            return [self.buffers[name] for name in names]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.exists() else None

        def write_calibration_cache(self, cache) -> None:
            atomic_write_bytes(cache_path, bytes(cache))

        def free(self) -> None:
            for ptr in self.buffers.values():
                cuda.free(ptr)

    return _Calibrator()


def _calib_inputs(calib, graph: str) -> dict[str, np.ndarray]:
    inputs = getattr(calib, f"{graph}_inputs", None)
    if not isinstance(inputs, dict) or not inputs:
        raise InputError(f"calib must have a non-empty dict '{graph}_inputs' of input name -> float32 array")
    return inputs


def _build_one(trt, cuda, onnx_path: Path, out_dir: Path, graph: str, options: BuildOptions, calib):
    calibrator = None
    if options.precision == "int8" and calib is not None:
        calibrator = _make_calibrator(trt, cuda, _calib_inputs(calib, graph), out_dir / f"{graph}.calib.cache")
    try:
        return build_engine(trt, onnx_path, options, calibrator)
    finally:
        if calibrator is not None:
            calibrator.free()


def build_engines(onnx_dir: Path, out_dir: Path, precision: str, workspace_gb: float = 2.0, device: int = 0,
                  dla_core: int | None = None, calib=None, max_batch: int = 1) -> dict:
    """Build ``out_dir/template.engine`` and ``out_dir/search.engine`` from ``onnx_dir``'s ONNX graphs.

    ``precision``: "fp32", "fp16" or "int8" (explicit when the ONNX holds Q/DQ nodes, else calibrated from
    ``calib``, a CalibrationSet: ``template_inputs`` / ``search_inputs`` dicts of float32 arrays stacked on axis
    0). ``dla_core`` puts layers on a Jetson DLA core with GPU fallback. Returns the paths written, the build info
    and the precision each engine really has. BackendUnavailableError (naming the ``tensorrt`` extra) without
    TensorRT or a CUDA GPU.
    """
    options = BuildOptions(precision, workspace_gb, dla_core, max_batch)
    onnx_dir, out_dir = Path(onnx_dir), Path(out_dir)
    files = locate(onnx_dir)
    if "onnx" not in files.formats:
        raise ModelError(f"{onnx_dir} holds no template.onnx/search.onnx to build engines from; export ONNX first")
    if precision == "int8" and calib is not None:
        for graph in GRAPHS:
            _calib_inputs(calib, graph)
    trt = import_tensorrt("TensorRT export")
    cuda = open_cuda(device, "TensorRT export")
    try:
        target = current_target(trt, cuda)
        engines, precisions = {}, {}
        for graph in GRAPHS:
            engines[graph], precisions[graph] = _build_one(trt, cuda, files.graph("onnx", graph), out_dir, graph,
                                                           options, calib)
    finally:
        cuda.close()
    built = "int8" if "int8" in precisions.values() else precision
    info = build_info(target, options, {"precision": built, "edgetrack_version": __version__})
    paths = write_engine_folder(out_dir, engines, files.spec, info)
    caches = [out_dir / f"{g}.calib.cache" for g in GRAPHS if (out_dir / f"{g}.calib.cache").exists()]
    return {"folder": out_dir, "template": paths["template"], "search": paths["search"], "spec": paths["spec"],
            "build": info, "precisions": precisions, "calibration_caches": caches}
