"""ONNX Runtime backend: the template and search graphs of an exported folder."""
from __future__ import annotations

import numpy as np

from ...errors import ModelError, missing_extra
from ..model_files import ModelFiles


def _session(path, threads: int, providers: list[str]):
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise missing_extra("onnxruntime", "onnxruntime", "the onnxruntime backend") from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    available = ort.get_available_providers()
    chosen = [p for p in providers if p in available] or ["CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=chosen)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelError(f"onnxruntime cannot load {path}: {exc}") from exc


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, files: ModelFiles, threads: int = 1, device: str = "cpu") -> None:
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        self.template_sess = _session(files.graph("onnx", "template"), threads, providers)
        self.search_sess = _session(files.graph("onnx", "search"), threads, providers)
        self._t_in = self.template_sess.get_inputs()[0].name
        self._s_in = [i.name for i in self.search_sess.get_inputs()]
        n_zf = len(self.template_sess.get_outputs())
        if len(self._s_in) != 1 + n_zf:
            raise ModelError(f"{files.root}: search graph takes {len(self._s_in)} inputs but the template graph "
                             f"gives {n_zf} outputs (expected 1 + {n_zf})")
        self.providers = self.search_sess.get_providers()

    def run_template(self, z: np.ndarray) -> list[np.ndarray]:
        return self.template_sess.run(None, {self._t_in: z})

    def run_search(self, x: np.ndarray, zfs: list[np.ndarray]) -> list[np.ndarray]:
        feeds = {self._s_in[0]: x}
        feeds.update({name: zf for name, zf in zip(self._s_in[1:], zfs)})
        return self.search_sess.run(None, feeds)
