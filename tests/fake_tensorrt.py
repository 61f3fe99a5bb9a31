"""Stand-ins for ``tensorrt`` and cuda-python's runtime so the TensorRT code paths run on a machine without a GPU.

"Device memory" is host memory (numpy buffers addressed by pointer), so copies are ``ctypes.memmove``. An
"engine" is the ONNX graph itself, run by onnxruntime when the context executes. The stand-ins model the
API shapes edgetrack uses (named tensors of TensorRT >= 8.5, or bindings of 8.0-8.4); they check nothing about
real kernels, precisions or DLA placement.
"""
from __future__ import annotations

import ctypes
import enum
import json
import types

import numpy as np

MAGIC = b"FAKETRT1"


# ----------------------------------------------------------------------------- cuda-python runtime
def make_cudart(gpu="Fake GPU", cc=(8, 7)):
    rt = types.SimpleNamespace()
    rt.cudaError_t = enum.Enum("cudaError_t", {"cudaSuccess": 0, "cudaErrorInvalidValue": 1})
    rt.cudaMemcpyKind = enum.Enum("cudaMemcpyKind", {"cudaMemcpyHostToDevice": 1, "cudaMemcpyDeviceToHost": 2})
    ok = rt.cudaError_t.cudaSuccess
    memory: dict[int, np.ndarray] = {}
    rt.memory = memory
    rt.cudaGetDeviceCount = lambda: (ok, 1)
    rt.cudaSetDevice = lambda d: (ok,)
    rt.cudaStreamCreate = lambda: (ok, 0)
    rt.cudaStreamDestroy = lambda s: (ok,)
    rt.cudaStreamSynchronize = lambda s: (ok,)
    rt.cudaGetErrorString = lambda e: (ok, b"fake error")
    rt.cudaGetDeviceProperties = lambda d: (ok, types.SimpleNamespace(name=gpu.encode() + b"\0\0", major=cc[0],
                                                                       minor=cc[1]))

    def malloc(n):
        buf = np.zeros(n, np.uint8)
        memory[buf.ctypes.data] = buf
        return ok, buf.ctypes.data

    rt.cudaMalloc = malloc
    rt.cudaFree = lambda p: (memory.pop(p, None), (ok,))[1]
    rt.cudaMemcpyAsync = lambda dst, src, n, kind, stream: (ctypes.memmove(dst, src, n), (ok,))[1]
    return rt


# ----------------------------------------------------------------------------- tensorrt
def _array_at(ptr: int, shape, dtype=np.float32) -> np.ndarray:
    n = int(np.prod(shape))
    raw = (ctypes.c_char * (n * np.dtype(dtype).itemsize)).from_address(ptr)
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


class _Engine:
    def __init__(self, blob: bytes) -> None:
        import onnxruntime as ort

        header, onnx_bytes = blob[len(MAGIC):].split(b"\n", 1)
        self.meta = json.loads(header)
        self.session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        self.in_names = [i.name for i in self.session.get_inputs()]
        self.out_names = [o.name for o in self.session.get_outputs()]
        self.names = self.in_names + self.out_names
        self.shapes = {i.name: tuple(-1 if not isinstance(d, int) else d for d in i.shape)
                       for i in [*self.session.get_inputs(), *self.session.get_outputs()]}

    def profile(self, name):
        rest = self.shapes[name][1:]
        return [(1, *rest), (1, *rest), (self.meta["max_batch"], *rest)]


class _TensorEngine(_Engine):
    @property
    def num_io_tensors(self):
        return len(self.names)

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        return TensorIOMode.INPUT if name in self.in_names else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return "float32"

    def get_tensor_shape(self, name):
        return self.shapes[name]

    def get_tensor_profile_shape(self, name, index):
        return self.profile(name)

    def create_execution_context(self):
        return _Context(self)


class _BindingEngine(_Engine):
    @property
    def num_bindings(self):
        return len(self.names)

    def get_binding_name(self, i):
        return self.names[i]

    def binding_is_input(self, i):
        return self.names[i] in self.in_names

    def get_binding_dtype(self, i):
        return "float32"

    def get_binding_shape(self, i):
        return self.shapes[self.names[i]]

    def get_profile_shape(self, profile, i):
        return self.profile(self.names[i])

    def create_execution_context(self):
        return _BindingContext(self)


class _Context:
    def __init__(self, engine) -> None:
        self.engine, self.in_shapes, self.addresses = engine, {}, {}
        self.runs = 0

    def set_input_shape(self, name, shape):
        if tuple(shape[1:]) != self.engine.shapes[name][1:] or not 1 <= shape[0] <= self.engine.meta["max_batch"]:
            return False
        self.in_shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        if name in self.in_shapes:
            return self.in_shapes[name]
        batch = next(iter(self.in_shapes.values()))[0]
        return (batch, *self.engine.shapes[name][1:])

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr

    def execute_async_v3(self, stream):
        feeds = {n: _array_at(self.addresses[n], self.in_shapes[n]).copy() for n in self.engine.in_names}
        for name, out in zip(self.engine.out_names, self.engine.session.run(None, feeds)):
            _array_at(self.addresses[name], out.shape)[...] = out
        self.runs += 1
        return True


class _BindingContext(_Context):
    def set_binding_shape(self, i, shape):
        return self.set_input_shape(self.engine.names[i], shape)

    def get_binding_shape(self, i):
        return self.get_tensor_shape(self.engine.names[i])

    def execute_async_v2(self, bindings, stream):
        self.addresses = dict(zip(self.engine.names, bindings))
        return self.execute_async_v3(stream)


class TensorIOMode(enum.Enum):
    INPUT = 0
    OUTPUT = 1


def make_tensorrt(version="10.3.0", binding_api=False, qdq=False):
    trt = types.SimpleNamespace(__version__=version, TensorIOMode=TensorIOMode, built=[])
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.nptype = np.dtype
    trt.LayerType = enum.Enum("LayerType", "CONVOLUTION QUANTIZE DEQUANTIZE")
    trt.BuilderFlag = enum.Enum("BuilderFlag", "FP16 INT8 GPU_FALLBACK")
    trt.MemoryPoolType = enum.Enum("MemoryPoolType", "WORKSPACE")
    trt.DeviceType = enum.Enum("DeviceType", "GPU DLA")
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", {"EXPLICIT_BATCH": 0})

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            pass

    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    engine_cls = _BindingEngine if binding_api else _TensorEngine

    class Runtime:
        def __init__(self, logger) -> None:
            pass

        def deserialize_cuda_engine(self, blob):
            return engine_cls(blob) if blob.startswith(MAGIC) else None

    trt.Runtime = Runtime
    trt.Builder = lambda logger: _Builder(trt, qdq)
    trt.OnnxParser = _Parser
    return trt


class _Network:
    def __init__(self, qdq: bool) -> None:
        self.onnx, self.inputs, self.qdq = b"", [], qdq

    @property
    def num_inputs(self):
        return len(self.inputs)

    def get_input(self, i):
        return self.inputs[i]

    @property
    def num_layers(self):
        return 1

    def get_layer(self, i):
        return types.SimpleNamespace(type=self.layer_type)


class _Parser:
    num_errors = 0

    def __init__(self, network, logger) -> None:
        self.network = network

    def parse(self, blob):
        import onnxruntime as ort

        sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
        self.network.onnx = blob
        self.network.inputs = [types.SimpleNamespace(name=i.name, shape=tuple(
            -1 if not isinstance(d, int) else d for d in i.shape)) for i in sess.get_inputs()]
        return True


class _Builder:
    platform_has_fast_fp16 = True
    num_DLA_cores = 2

    def __init__(self, trt, qdq: bool) -> None:
        self.trt, self.qdq = trt, qdq

    def create_network(self, flags):
        network = _Network(self.qdq)
        network.layer_type = self.trt.LayerType.QUANTIZE if self.qdq else self.trt.LayerType.CONVOLUTION
        return network

    def create_builder_config(self):
        config = types.SimpleNamespace(flags=set(), profiles=[], int8_calibrator=None, limits={})
        config.set_flag = config.flags.add
        config.add_optimization_profile = config.profiles.append
        config.set_memory_pool_limit = config.limits.__setitem__
        config.set_calibration_profile = lambda p: None
        return config

    def create_optimization_profile(self):
        profile = types.SimpleNamespace(shapes={})
        profile.set_shape = lambda name, lo, opt, hi: profile.shapes.__setitem__(name, (lo, opt, hi))
        return profile

    def build_serialized_network(self, network, config):
        calib = config.int8_calibrator
        if calib is not None:  # run the calibration loop the way TensorRT does
            names = [i.name for i in network.inputs]
            batches = 0
            while calib.get_batch(names) is not None:
                batches += 1
            calib.write_calibration_cache(f"calibrated on {batches}".encode())
        max_batch = max((p.shapes[n][2][0] for p in config.profiles for n in p.shapes), default=1)
        self.trt.built.append(config)
        return MAGIC + json.dumps({"max_batch": max_batch}).encode() + b"\n" + network.onnx
