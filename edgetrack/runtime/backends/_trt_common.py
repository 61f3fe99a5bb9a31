"""What the TensorRT backend and the engine builder share: the tensorrt import, the build target (GPU and
TensorRT version), the engine-cache key, and the ``spec.json`` written beside engines.

The only module that imports ``tensorrt``. Engines are specific to the GPU model and the TensorRT version that
built them, so both are recorded at build time and checked at load time.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from ...data.fileio import atomic_write_bytes, atomic_write_text
from ...errors import BackendUnavailableError, InputError, missing_extra
from ...spec import TrackerSpec
from ..model_files import SPEC_SIDECAR

PRECISIONS = ("fp32", "fp16", "int8")
CACHE_ENV = "EDGETRACK_CACHE"
NEEDS = "a CUDA GPU with the NVIDIA driver, TensorRT and cuda-python (or pycuda)"
_LOGGER = []  # TensorRT wants one logger per process; created on first use


def import_tensorrt(what: str = "the tensorrt backend"):
    """The ``tensorrt`` module, or BackendUnavailableError naming the ``tensorrt`` extra."""
    try:
        import tensorrt
    except ImportError as exc:
        err = missing_extra("tensorrt", "tensorrt", what)
        raise BackendUnavailableError(f"{err} It also needs {NEEDS}; on a Jetson use the TensorRT that JetPack "
                                      "installs (a venv made with --system-site-packages).") from exc
    return tensorrt


def trt_logger(trt):
    if not _LOGGER:
        _LOGGER.append(trt.Logger(trt.Logger.WARNING))
    return _LOGGER[0]


def tensorrt_usable() -> bool:
    """TensorRT imports and a CUDA GPU answers; never raises."""
    from ._cuda import cuda_device_count

    try:
        import_tensorrt()
    except Exception:
        return False
    return cuda_device_count() > 0


def parse_cuda_device(device: str | int) -> int:
    """``"cuda:1"``, ``"gpu:1"``, ``1`` -> 1; ``"cuda"``, ``"gpu"`` and the runtime's default ``"cpu"`` -> 0."""
    if isinstance(device, int) and not isinstance(device, bool) and device >= 0:
        return device
    match = re.fullmatch(r"(?:cuda|gpu)(?::(\d+))?|cpu", str(device).strip().lower())
    if not match:
        raise InputError(f"device {device!r} is not a CUDA device; use 'cuda' or 'cuda:N'")
    return int(match.group(1) or 0)


@dataclass(frozen=True)
class BuildTarget:
    """What an engine is tied to: the GPU model and the TensorRT version that built it."""

    gpu: str
    compute_capability: str  # "8.7"
    tensorrt: str

    def describe(self) -> str:
        return f"{self.gpu} (compute capability {self.compute_capability}) with TensorRT {self.tensorrt}"


@dataclass(frozen=True)
class BuildOptions:
    """How an engine is built. ``precision``: fp32, fp16 or int8; ``dla_core``: a DLA core (Jetson Xavier/Orin)
    or None for the GPU; ``max_batch``: the largest batch of the dynamic-batch profile (min 1, opt 1)."""

    precision: str = "fp32"
    workspace_gb: float = 2.0
    dla_core: int | None = None
    max_batch: int = 1

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not (isinstance(self.max_batch, int) and self.max_batch >= 1):
            raise InputError(f"max_batch must be a positive integer, got {self.max_batch!r}")
        if not self.workspace_gb > 0:
            raise InputError(f"workspace_gb must be positive, got {self.workspace_gb!r}")
        if self.dla_core is not None and not (isinstance(self.dla_core, int) and self.dla_core >= 0):
            raise InputError(f"dla_core must be a non-negative integer or None, got {self.dla_core!r}")
        if self.dla_core is not None and self.precision == "fp32":
            raise InputError("the DLA runs FP16 or INT8 only: build with precision 'fp16' or 'int8'")
        if self.dla_core is not None and self.max_batch != 1:
            raise InputError("the DLA takes no dynamic shapes (profile min = opt = max): build DLA engines with "
                             "max_batch=1")


def current_target(trt, cuda) -> BuildTarget:
    name, (major, minor) = cuda.device_info()
    return BuildTarget(name, f"{major}.{minor}", str(trt.__version__))


def engine_cache_key(graphs: Iterable[bytes], target: BuildTarget, options: BuildOptions) -> str:
    """A hash of the ONNX bytes, the GPU and TensorRT version, and what changes the engine (precision, DLA core,
    batch range). Pure: the same inputs give the same key on every machine."""
    digest = hashlib.sha256()
    for blob in graphs:
        digest.update(hashlib.sha256(blob).digest())
    fields = {**asdict(target), "precision": options.precision, "dla_core": options.dla_core,
              "max_batch": options.max_batch}
    digest.update(json.dumps(fields, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def cache_root() -> Path:
    """``$EDGETRACK_CACHE/engines`` when set, else ``~/.cache/edgetrack/engines``."""
    base = os.environ.get(CACHE_ENV)
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "edgetrack"
    return root / "engines"


def build_info(target: BuildTarget, options: BuildOptions, extra: dict | None = None) -> dict:
    info = {**asdict(target), "precision": options.precision, "dla_core": options.dla_core,
            "max_batch": options.max_batch}
    info.update(extra or {})
    return info


def target_mismatch(build: dict, target: BuildTarget) -> str | None:
    """Why engines built as ``build`` (spec.json) cannot run on ``target``, or None when they can."""
    keys = ("gpu", "compute_capability", "tensorrt")
    if not all(k in build for k in keys):
        return "its spec.json does not say which GPU and TensorRT version built it"
    built = BuildTarget(*(str(build[k]) for k in keys))
    if built != target:
        return f"the engines were built for {built.describe()}, but this machine has {target.describe()}"
    return None


def write_engine_folder(out_dir: Path, engines: dict[str, bytes], spec: TrackerSpec, info: dict) -> dict[str, Path]:
    """Write ``<graph>.engine`` files and ``spec.json`` (spec + build info) atomically; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {graph: atomic_write_bytes(out_dir / f"{graph}.engine", blob) for graph, blob in engines.items()}
    sidecar = {"spec": spec.to_dict(), "build": info}
    paths["spec"] = atomic_write_text(out_dir / SPEC_SIDECAR, json.dumps(sidecar, indent=2, sort_keys=True))
    return paths
