"""The backend contract and the factory that picks one from the model files."""
from __future__ import annotations

from importlib import import_module
from typing import Protocol

import numpy as np

from ...errors import InputError, ModelError
from ..model_files import ModelFiles

# name -> (module, class, formats it can run)
BACKENDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "onnxruntime": ("edgetrack.runtime.backends.ort", "OnnxRuntimeBackend", ("onnx",)),
    "torch": ("edgetrack.runtime.backends.torch_backend", "TorchBackend", ("checkpoint",)),
}
# auto: the first backend whose format is present, in this order of preference per format.
_AUTO = {"onnx": "onnxruntime", "checkpoint": "torch"}


class Backend(Protocol):
    """Runs the two graphs. Inputs are float32 NCHW arrays already normalised as the spec says."""

    name: str

    def run_template(self, z: np.ndarray) -> list[np.ndarray]: ...

    def run_search(self, x: np.ndarray, zfs: list[np.ndarray]) -> list[np.ndarray]: ...


def resolve_backend_name(files: ModelFiles, backend: str) -> str:
    if backend == "auto":
        for fmt in _AUTO:
            if fmt in files.formats:
                return _AUTO[fmt]
        raise ModelError(f"no runnable model files in {files.root}")
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose from {['auto', *BACKENDS]}")
    accepted = BACKENDS[backend][2]
    if not any(fmt in files.formats for fmt in accepted):
        hint = ("export it first: edgetrack-export MODEL --format onnx --out DIR"
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
