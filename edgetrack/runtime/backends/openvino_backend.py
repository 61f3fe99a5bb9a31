"""OpenVINO backend: an exported IR folder (``template.xml/.bin``, ``search.xml/.bin``) or a plain ONNX folder
(OpenVINO reads ONNX), on an Intel CPU, GPU or NPU. Needs ``edgetrack[openvino]``.

Compiled for one-frame latency: one stream, ``threads`` inference threads, the LATENCY hint, and the IR's own
precision (``INFERENCE_PRECISION_HINT``): without it the CPU plugin runs FP32 graphs in bf16 on CPUs with
AVX512-BF16/AMX, which moves boxes away from the other backends. Each input shape (batch) gets its own
static-shape compiled model and infer request, made once on first use.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...errors import BackendUnavailableError, InputError, ModelError, missing_extra
from .._ov_meta import read_rt_info, weight_precisions
from ..model_files import ModelFiles
from .base import pair_search_inputs


def _import_openvino():
    try:
        import openvino
    except ImportError as exc:
        raise missing_extra("openvino", "openvino", "the openvino backend") from exc
    return openvino


def ov_device_name(device: str) -> str:
    """``"cpu"`` -> ``"CPU"``, ``"gpu"``/``"gpu:1"``/``"GPU.1"`` -> ``"GPU"``/``"GPU.1"``, ``"npu"`` -> ``"NPU"``."""
    match = re.fullmatch(r"(cpu|gpu|npu|auto)(?:[:.](\d+))?", str(device).strip().lower())
    if not match:
        raise InputError(f"device {device!r} is not an OpenVINO device; use 'cpu', 'gpu', 'gpu:N' or 'npu'")
    name = match.group(1).upper()
    return f"{name}.{match.group(2)}" if match.group(2) else name


def check_device_present(core, device: str) -> None:
    """BackendUnavailableError when OpenVINO has no such device here (no silent fallback to another one)."""
    if device.split(".")[0] in ("AUTO", "MULTI", "HETERO"):
        return
    present = list(core.available_devices)
    plugin = device.split(".")[0]
    if not any(d == device or (d.split(".")[0] == plugin and "." not in device) for d in present):
        raise BackendUnavailableError(f"OpenVINO has no device {device!r} on this machine (it sees "
                                      f"{', '.join(present) or 'none'})")


def ir_precision(path: Path) -> str:
    """The floating-point precision to compute in: ``f16`` for an FP16 IR, else ``f32`` (FP32 and INT8 IRs, whose
    quantized layers run in int8 whatever the hint). From the ``edgetrack_precision`` rt_info that
    edgetrack-export writes, else from the weights (FP16-compressed constants)."""
    if path.suffix != ".xml":
        return "f32"
    stated = read_rt_info(path, "edgetrack_precision")
    if stated is not None:
        return "f16" if stated == "fp16" else "f32"
    return "f16" if "f16" in weight_precisions(path) else "f32"


def compile_config(core, device: str, threads: int, precision: str) -> dict:
    """Latency settings, restricted to what the device supports (GPU plugins have no thread count)."""
    wanted = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(threads)}
    plugin = device.split(".")[0]
    try:
        supported = set(core.get_property(plugin, "SUPPORTED_PROPERTIES"))
    except Exception:  # a device that is not there: compile_model says so below
        supported = set(wanted) | {"INFERENCE_PRECISION_HINT"}
    if "INFERENCE_PRECISION_HINT" in supported:
        caps = set(core.get_property(plugin, "OPTIMIZATION_CAPABILITIES")) if plugin == "CPU" else {"FP16"}
        wanted["INFERENCE_PRECISION_HINT"] = precision if precision == "f32" or "FP16" in caps else "f32"
    return {k: v for k, v in wanted.items() if k in supported}


def compile_model(model, device: str = "cpu", threads: int = 1, precision: str = "f32"):
    """An OpenVINO model (path or in-memory) compiled with the backend's latency settings: the one place
    outside the backend (the exporter, the accuracy gate) gets a compiled model from."""
    ov = _import_openvino()
    core = ov.Core()
    name = ov_device_name(device)
    check_device_present(core, name)
    source = str(model) if isinstance(model, (str, Path)) else model
    return core.compile_model(source, name, compile_config(core, name, threads, precision))


class _Graph:
    """One graph: the model read once, a compiled model + infer request per input shape."""

    def __init__(self, ov, core, path: Path, device: str, config: dict) -> None:
        self._ov, self._core, self.path, self._device, self._config = ov, core, path, device, config
        try:
            self._model = core.read_model(str(path))
        except Exception as exc:  # openvino raises RuntimeError subclasses on bad files
            raise ModelError(f"OpenVINO cannot read {path}: {exc}") from exc
        self.inputs = [p.get_any_name() for p in self._model.inputs]
        self.outputs = [p.get_any_name() for p in self._model.outputs]
        self._requests: dict[tuple, object] = {}

    def _request(self, shapes: tuple[tuple[int, ...], ...]):
        if shapes not in self._requests:
            model = self._model.clone()
            try:
                model.reshape({name: self._ov.PartialShape(list(s)) for name, s in zip(self.inputs, shapes)})
                compiled = self._core.compile_model(model, self._device, self._config)
            except Exception as exc:
                raise ModelError(f"OpenVINO cannot run {self.path.name} on {self._device} with input shapes "
                                 f"{list(shapes)}: {exc}") from exc
            self._requests[shapes] = compiled.create_infer_request()
        return self._requests[shapes]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Inputs by name; outputs in the graph's output order (copied out of the request's memory)."""
        request = self._request(tuple(tuple(feeds[name].shape) for name in self.inputs))
        for name in self.inputs:
            request.set_tensor(name, self._ov.Tensor(np.ascontiguousarray(feeds[name], dtype=np.float32)))
        request.infer()
        return [np.array(request.get_output_tensor(i).data, dtype=np.float32) for i in range(len(self.outputs))]


class OpenVinoBackend:
    name = "openvino"

    def __init__(self, files: ModelFiles, threads: int = 1, device: str = "cpu") -> None:
        ov = _import_openvino()
        fmt = "openvino" if "openvino" in files.formats else "onnx"
        self.format = fmt
        self.device = ov_device_name(device)
        core = ov.Core()
        check_device_present(core, self.device)
        t_path, s_path = files.graph(fmt, "template"), files.graph(fmt, "search")
        self.precision = ir_precision(t_path)
        self.config = compile_config(core, self.device, threads, self.precision)
        self.template = _Graph(ov, core, t_path, self.device, self.config)
        self.search = _Graph(ov, core, s_path, self.device, self.config)
        self._x_name, self._zf_names = pair_search_inputs(files.root, self.template.outputs, self.search.inputs)
        side = files.spec.exemplar_size
        zfs = self.run_template(np.zeros((1, 3, side, side), np.float32))  # compile batch 1 now, not on frame 1
        side = files.spec.instance_size
        self.run_search(np.zeros((1, 3, side, side), np.float32), zfs)

    def run_template(self, z: np.ndarray) -> list[np.ndarray]:
        return self.template.run({self.template.inputs[0]: z})

    def run_search(self, x: np.ndarray, zfs: list[np.ndarray]) -> list[np.ndarray]:
        return self.search.run({self._x_name: x, **dict(zip(self._zf_names, zfs))})
