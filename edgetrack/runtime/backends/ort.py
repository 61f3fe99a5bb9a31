"""ONNX Runtime backend: the template and search graphs of an exported folder.

:func:`create_session` is the one place an onnxruntime ``InferenceSession`` is built; the exporter, the accuracy
gate and the architecture search's latency measurement call it too, so every graph is timed and checked with
the settings the runtime tracks with.
"""
from __future__ import annotations

import re

import numpy as np

from ...errors import BackendUnavailableError, InputError, ModelError
from ..model_files import ModelFiles
from .base import pair_search_inputs

_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def import_onnxruntime():
    """The onnxruntime module; BackendUnavailableError telling a missing package from one that fails to load."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == "onnxruntime":
            raise BackendUnavailableError(
                "the onnxruntime backend needs the 'onnxruntime' package, a core dependency of edgetrack that is "
                "missing from this environment. Reinstall it with: pip install 'onnxruntime>=1.17' "
                "(or 'onnxruntime-gpu' for CUDA)") from exc
        raise BackendUnavailableError(
            f"onnxruntime is installed but failed to load: {exc}. A native library it needs is missing or does not "
            "match this machine (for onnxruntime-gpu: CUDA and cuDNN versions); reinstall onnxruntime or install "
            "that library") from exc
    return ort


def parse_device(device: str) -> tuple[str, int | None]:
    """``"cpu"`` -> ("cpu", None); ``"cuda"``/``"cuda:N"`` -> ("cuda", N); anything else is an InputError."""
    match = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", str(device).strip().lower()) if isinstance(device, str) else None
    if not match or (match.group(1) == "cpu" and match.group(2)):
        raise InputError(f"device {device!r} is not an onnxruntime device; use 'cpu', 'cuda' or 'cuda:N'")
    kind = match.group(1)
    return kind, (int(match.group(2) or 0) if kind == "cuda" else None)


def _providers(ort, device: str) -> list:
    kind, index = parse_device(device)
    wanted = _PROVIDERS[kind]
    if wanted not in ort.get_available_providers():
        raise BackendUnavailableError(
            f"device {device!r} needs onnxruntime's {wanted}, which this onnxruntime build lacks (it has "
            f"{', '.join(ort.get_available_providers())}). Install 'onnxruntime-gpu' in place of 'onnxruntime' "
            "with a matching CUDA, or use device='cpu'.")
    if kind == "cuda":
        return [(wanted, {"device_id": index})]
    return [wanted]


def create_session(path, threads: int = 1, device: str = "cpu"):
    """An ``InferenceSession`` on ``path`` (a file or serialized bytes) with the runtime's settings: ``threads``
    intra-op threads, sequential execution, every graph optimisation, warnings and errors only. No silent
    fallback: a device this onnxruntime cannot run is an error."""
    ort = import_onnxruntime()
    providers = _providers(ort, device)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    source = path if isinstance(path, (bytes, bytearray)) else str(path)
    try:
        return ort.InferenceSession(source, sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        name = "<bytes>" if isinstance(path, (bytes, bytearray)) else path
        raise ModelError(f"onnxruntime cannot load {name}: {exc}") from exc


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, files: ModelFiles, threads: int = 1, device: str = "cpu") -> None:
        self.template_sess = create_session(files.graph("onnx", "template"), threads, device)
        self.search_sess = create_session(files.graph("onnx", "search"), threads, device)
        self._t_in = self.template_sess.get_inputs()[0].name
        t_out = [o.name for o in self.template_sess.get_outputs()]
        self._x_name, self._zf_names = pair_search_inputs(files.root, t_out,
                                                          [i.name for i in self.search_sess.get_inputs()])
        self.providers = self.search_sess.get_providers()
        self.device = self.providers[0]

    def run_template(self, z: np.ndarray) -> list[np.ndarray]:
        return self.template_sess.run(None, {self._t_in: z})

    def run_search(self, x: np.ndarray, zfs: list[np.ndarray]) -> list[np.ndarray]:
        feeds = {self._x_name: x}
        feeds.update(dict(zip(self._zf_names, zfs)))
        return self.search_sess.run(None, feeds)
