"""The backend contract and the factory that picks one from the model files."""
from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Protocol

import numpy as np

from ...errors import InputError, ModelError
from ..model_files import ModelFiles

# name -> (module, class, formats it can run, in the order it prefers them)
BACKENDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "onnxruntime": ("edgetrack.runtime.backends.ort", "OnnxRuntimeBackend", ("onnx",)),
    "torch": ("edgetrack.runtime.backends.torch_backend", "TorchBackend", ("checkpoint",)),
    "openvino": ("edgetrack.runtime.backends.openvino_backend", "OpenVinoBackend", ("openvino", "onnx")),
    "tensorrt": ("edgetrack.runtime.backends.tensorrt_backend", "TensorRTBackend", ("tensorrt", "onnx")),
}
# auto: (format present, backend that runs it), best first. A choice is skipped while its library is missing
# (or, for TensorRT, no CUDA GPU answers) and a later one fits; when none fits, the first present one is taken
# so that its error names the extra to install.
_AUTO = (("tensorrt", "tensorrt"), ("openvino", "openvino"), ("onnx", "onnxruntime"), ("checkpoint", "torch"))
_EXPORT_FORMAT = {"onnxruntime": "onnx", "openvino": "openvino", "tensorrt": "tensorrt"}


class Backend(Protocol):
    """Runs the two graphs. Inputs are float32 NCHW arrays already normalised as the spec says."""

    name: str

    def run_template(self, z: np.ndarray) -> list[np.ndarray]: ...

    def run_search(self, x: np.ndarray, zfs: list[np.ndarray]) -> list[np.ndarray]: ...


def pair_search_inputs(root, template_outputs: list[str], search_inputs: list[str]) -> tuple[str, list[str]]:
    """The search graph's image input and its template inputs in the order of the template graph's outputs:
    matched by name (edgetrack-export gives them the same names), else by position (image first)."""
    t_out, s_in = list(template_outputs), list(search_inputs)
    if len(s_in) != 1 + len(t_out):
        raise ModelError(f"{root}: search graph takes {len(s_in)} inputs but the template graph gives "
                         f"{len(t_out)} outputs (expected 1 + {len(t_out)})")
    if set(t_out) <= set(s_in):
        return next(n for n in s_in if n not in t_out), t_out
    return s_in[0], s_in[1:]


def _usable(backend: str) -> bool:
    """Whether a backend's library is there, without importing it (TensorRT also needs a CUDA GPU)."""
    if backend == "tensorrt":
        from ._trt_common import tensorrt_usable

        return tensorrt_usable()
    return find_spec({"onnxruntime": "onnxruntime", "torch": "torch", "openvino": "openvino"}[backend]) is not None


def _auto_backend(files: ModelFiles) -> str:
    present = [backend for fmt, backend in _AUTO if fmt in files.formats]
    if not present:
        raise ModelError(f"no runnable model files in {files.root}")
    return next((backend for backend in present if _usable(backend)), present[0])


def resolve_backend_name(files: ModelFiles, backend: str) -> str:
    if backend == "auto":
        return _auto_backend(files)
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose from {['auto', *BACKENDS]}")
    accepted = BACKENDS[backend][2]
    if not any(fmt in files.formats for fmt in accepted):
        hint = (f"export it first: edgetrack-export MODEL --format {_EXPORT_FORMAT.get(backend, 'onnx')} --out DIR"
                if "checkpoint" in files.formats else "")
        raise ModelError(f"backend {backend!r} runs {'/'.join(accepted)} files, but {files.root} holds "
                         f"{'/'.join(files.formats) or 'none'}. {hint}".strip())
    return backend


def open_backend(files: ModelFiles, backend: str = "auto", threads: int = 1, device: str = "cpu") -> Backend:
    """Instantiate the backend for these model files (vendor imports happen here, lazily)."""
    name = resolve_backend_name(files, backend)
    module_name, class_name, _ = BACKENDS[name]
    cls = getattr(import_module(module_name), class_name)
    return cls(files, threads=threads, device=device)
