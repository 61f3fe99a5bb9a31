"""TensorRT backend: serialized engines on an NVIDIA GPU (needs ``edgetrack[tensorrt]`` and a CUDA GPU).

Runs ``template.engine`` + ``search.engine`` from an engine folder (``spec.json`` says which GPU and TensorRT
version built them), or builds engines from an ONNX folder once and caches them under
``~/.cache/edgetrack/engines`` (``$EDGETRACK_CACHE/engines``). Device buffers are allocated once, for the largest
batch of the engine's profile, and re-used; the template tensors stay on the GPU between frames and are bound
straight into the search engine while the caller passes back the arrays ``run_template`` returned.

TensorRT 8.5 and later (JetPack 5.1+, desktop 8.6/10.x) run through the named-tensor API (``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``); TensorRT 8.0-8.4 (JetPack 4.6, 5.0) through the binding API.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ...errors import InputError, ModelError
from ..model_files import ModelFiles, read_build_info
from ._cuda import open_cuda
from ._trt_build import build_engine
from ._trt_common import (
    BuildOptions,
    BuildTarget,
    build_info,
    cache_root,
    current_target,
    engine_cache_key,
    import_tensorrt,
    parse_cuda_device,
    target_mismatch,
    trt_logger,
    write_engine_folder,
)
from .base import pair_search_inputs

REBUILD = ("TensorRT engines do not move between GPU models or TensorRT versions: build them on this device with "
           "edgetrack-export MODEL --format tensorrt --out DIR")


class _TensorIO:
    """Named-tensor API (TensorRT >= 8.5)."""

    def __init__(self, trt, engine, context) -> None:
        self._trt, self._engine, self._ctx = trt, engine, context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.inputs = [n for n in names if is_input[n]]
        self.outputs = [n for n in names if not is_input[n]]

    def dtype(self, name: str) -> np.dtype:
        return np.dtype(self._trt.nptype(self._engine.get_tensor_dtype(name)))

    def max_input_shape(self, name: str) -> tuple[int, ...]:
        shape = tuple(self._engine.get_tensor_shape(name))
        if min(shape, default=0) >= 0:
            return shape
        return tuple(self._engine.get_tensor_profile_shape(name, 0)[2])

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        return bool(self._ctx.set_input_shape(name, shape))

    def output_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._ctx.get_tensor_shape(name))

    def execute(self, addresses: dict[str, int], stream: int) -> bool:
        for name, ptr in addresses.items():
            self._ctx.set_tensor_address(name, ptr)
        return bool(self._ctx.execute_async_v3(stream))


class _BindingIO:
    """Binding-index API (TensorRT 8.0-8.4, deprecated in 8.5, removed in 10)."""

    def __init__(self, trt, engine, context) -> None:
        self._trt, self._engine, self._ctx = trt, engine, context
        self._index = {engine.get_binding_name(i): i for i in range(engine.num_bindings)}
        self.inputs = [n for n, i in self._index.items() if engine.binding_is_input(i)]
        self.outputs = [n for n, i in self._index.items() if not engine.binding_is_input(i)]

    def dtype(self, name: str) -> np.dtype:
        return np.dtype(self._trt.nptype(self._engine.get_binding_dtype(self._index[name])))

    def max_input_shape(self, name: str) -> tuple[int, ...]:
        shape = tuple(self._engine.get_binding_shape(self._index[name]))
        if min(shape, default=0) >= 0:
            return shape
        return tuple(self._engine.get_profile_shape(0, self._index[name])[2])

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        return bool(self._ctx.set_binding_shape(self._index[name], shape))

    def output_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._ctx.get_binding_shape(self._index[name]))

    def execute(self, addresses: dict[str, int], stream: int) -> bool:
        bindings = [0] * len(self._index)
        for name, ptr in addresses.items():
            bindings[self._index[name]] = ptr
        return bool(self._ctx.execute_async_v2(bindings, stream))


class _OnDevice:
    """An input already in device memory (a template tensor kept from ``run_template``)."""

    def __init__(self, ptr: int, shape: tuple[int, ...]) -> None:
        self.ptr, self.shape = ptr, shape


class _Engine:
    """One deserialized engine, its execution context and its device buffers (allocated once)."""

    def __init__(self, trt, cuda, path: Path) -> None:
        self.path, self._cuda = path, cuda
        self._runtime = trt.Runtime(trt_logger(trt))
        try:
            engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        except Exception as exc:  # TensorRT raises its own types on foreign engines
            raise ModelError(f"TensorRT cannot load {path}: {exc}. {REBUILD}") from exc
        if engine is None:
            raise ModelError(f"TensorRT cannot load {path} (see its log above). {REBUILD}")
        self.engine = engine
        self.context = engine.create_execution_context()
        tensor_api = hasattr(engine, "num_io_tensors") and hasattr(self.context, "execute_async_v3")
        self.io = (_TensorIO if tensor_api else _BindingIO)(trt, engine, self.context)
        self.dtypes = {n: self.io.dtype(n) for n in self.io.inputs + self.io.outputs}
        self.max_batch, max_shapes = self._max_shapes()
        self.buffers = {n: cuda.malloc(int(np.prod(s)) * self.dtypes[n].itemsize) for n, s in max_shapes.items()}

    def _max_shapes(self) -> tuple[int, dict[str, tuple[int, ...]]]:
        shapes = {n: self.io.max_input_shape(n) for n in self.io.inputs}
        for name, shape in shapes.items():
            self.io.set_input_shape(name, shape)
        shapes.update({n: self.io.output_shape(n) for n in self.io.outputs})
        if any(d < 0 for s in shapes.values() for d in s):
            raise ModelError(f"{self.path}: the engine has dynamic axes besides the batch: {shapes}")
        return min(s[0] for n, s in shapes.items() if n in self.io.inputs), shapes

    def run(self, feeds: dict[str, np.ndarray | _OnDevice]) -> list[np.ndarray]:
        cuda = self._cuda
        cuda.activate()
        addresses = dict(self.buffers)
        staged = []  # keep host copies alive until the stream has finished with them
        for name in self.io.inputs:
            value = feeds[name]
            if value.shape[0] > self.max_batch:
                raise InputError(f"batch {value.shape[0]} is larger than {self.path.name} takes "
                                 f"({self.max_batch}); build the engines with a larger max_batch")
            if not self.io.set_input_shape(name, tuple(value.shape)):
                raise InputError(f"{self.path.name} does not take {name} of shape {tuple(value.shape)}")
            if isinstance(value, _OnDevice):
                addresses[name] = value.ptr
            else:
                host = np.ascontiguousarray(value, dtype=self.dtypes[name])
                cuda.to_device(self.buffers[name], host)
                staged.append(host)
        if not self.io.execute(addresses, cuda.stream_handle):
            raise ModelError(f"TensorRT failed to run {self.path.name}")
        outs = []
        for name in self.io.outputs:
            out = np.empty(self.io.output_shape(name), dtype=self.dtypes[name])
            cuda.to_host(out, self.buffers[name])
            outs.append(out)
        cuda.synchronize()
        return [o if o.dtype == np.float32 else o.astype(np.float32) for o in outs]

    def free(self) -> None:
        for ptr in self.buffers.values():
            self._cuda.free(ptr)
        self.buffers = {}


def _cached_engines(trt, files: ModelFiles, target: BuildTarget, options: BuildOptions) -> Path:
    """Engines built from the folder's ONNX graphs, in the engine cache (built on the first call)."""
    onnx = [files.graph("onnx", g) for g in ("template", "search")]
    key = engine_cache_key([p.read_bytes() for p in onnx], target, options)
    folder = cache_root() / key
    if all((folder / n).exists() for n in ("template.engine", "search.engine", "spec.json")):
        return folder
    engines, precision = {}, options.precision
    for graph, path in zip(("template", "search"), onnx):
        try:
            engines[graph], precision = build_engine(trt, path, options)
        except InputError as exc:
            raise ModelError(f"cannot build TensorRT engines from {files.root}: {exc}") from exc
    info = build_info(target, options, {"precision": precision, "source": str(files.root)})
    write_engine_folder(folder, engines, files.spec, info)
    return folder


def engine_folder(trt, files: ModelFiles, target: BuildTarget) -> Path:
    """The folder holding engines this machine can run: the model's own, or ones built from its ONNX graphs."""
    if "tensorrt" not in files.formats:
        return _cached_engines(trt, files, target, BuildOptions("fp32"))
    build = read_build_info(files.root)
    why = target_mismatch(build, target)
    if why is None:
        return files.root
    if "onnx" not in files.formats:
        raise ModelError(f"{files.root}: {why}. {REBUILD}")
    warnings.warn(f"{files.root}: {why}; building engines from the ONNX graphs beside them (cached in "
                  f"{cache_root()})", stacklevel=3)
    options = BuildOptions(build.get("precision", "fp32"), max_batch=int(build.get("max_batch", 1)))
    return _cached_engines(trt, files, target, options)


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, files: ModelFiles, threads: int = 1, device: str = "cpu") -> None:
        trt = import_tensorrt()
        index = parse_cuda_device(device)
        self.device = f"cuda:{index}"
        self.cuda = open_cuda(index)
        self.target = current_target(trt, self.cuda)
        self.folder = engine_folder(trt, files, self.target)
        self.template = _Engine(trt, self.cuda, self.folder / "template.engine")
        self.search = _Engine(trt, self.cuda, self.folder / "search.engine")
        self._x_name, self._zf_names = pair_search_inputs(files.root, self.template.io.outputs,
                                                            self.search.io.inputs)
        self._kept: list[np.ndarray] = []  # the arrays run_template returned last; their data is on the GPU

    def run_template(self, z: np.ndarray) -> list[np.ndarray]:
        outs = self.template.run({self.template.io.inputs[0]: z})
        for out in outs:
            out.flags.writeable = False  # unchanged arrays let run_search use the copies still on the GPU
        self._kept = outs
        return outs

    def _zf_feed(self, i: int, zf: np.ndarray):
        if i < len(self._kept) and zf is self._kept[i]:
            name = self.template.io.outputs[i]
            if self.template.dtypes[name] == self.search.dtypes[self._zf_names[i]]:
                return _OnDevice(self.template.buffers[name], zf.shape)
        return zf

    def run_search(self, x: np.ndarray, zfs: list[np.ndarray]) -> list[np.ndarray]:
        """Search outputs for a batch of crops; a batch above the engine's largest (several targets, SiamFC's
        scales) runs in slices of that size, each crop with its own template rows."""
        step = self.search.max_batch
        if x.shape[0] <= step:
            return self._search(x, zfs)
        parts = [self._search(x[i:i + step], [zf[i:i + step] if zf.shape[0] == x.shape[0] else zf for zf in zfs])
                 for i in range(0, x.shape[0], step)]
        return [np.concatenate(outs) for outs in zip(*parts)]

    def _search(self, x: np.ndarray, zfs: list[np.ndarray]) -> list[np.ndarray]:
        feeds = {self._x_name: x}
        feeds.update({name: self._zf_feed(i, zf) for i, (name, zf) in enumerate(zip(self._zf_names, zfs))})
        return self.search.run(feeds)

    def close(self) -> None:
        for engine in (getattr(self, "template", None), getattr(self, "search", None)):
            if engine is not None:
                engine.free()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
