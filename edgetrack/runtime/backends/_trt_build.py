"""Building one TensorRT engine from one ONNX graph (used by the backend's engine cache and by edgetrack-export).

The ``tensorrt`` module is passed in (imported by :mod:`._trt_common`). The network takes a dynamic batch axis
through one optimization profile (min 1, opt 1, max ``max_batch``). INT8 is explicit when the graph holds
Quantize/Dequantize nodes (QDQ ONNX); otherwise it needs an INT8 calibrator (implicit quantization, the way
TensorRT 8.x on Jetson does it).
"""
from __future__ import annotations

import warnings
from pathlib import Path

from ...errors import InputError, ModelError
from ._trt_common import BuildOptions, trt_logger


def _network(trt, builder, onnx_path: Path):
    major = int(str(trt.__version__).split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, trt_logger(trt))
    ok = parser.parse(Path(onnx_path).read_bytes())
    if not ok:
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors}")
    return network, parser


def has_qdq(trt, network) -> bool:
    """Whether the parsed network holds Quantize/Dequantize layers (explicit INT8)."""
    qdq = {trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE}
    return any(network.get_layer(i).type in qdq for i in range(network.num_layers))


def _token_range(onnx_path: Path) -> tuple[int, int, int] | None:
    """(min, opt, max) template tokens of a vit search graph whose spec turns the template memory on: one
    template's, the memory budget, the budget plus one template (the condensing search); None otherwise."""
    from ...spec import METADATA_KEY, TrackerSpec
    from .._onnx_meta import read_metadata_props

    text = read_metadata_props(Path(onnx_path)).get(METADATA_KEY)
    spec = TrackerSpec.from_json(text) if text else None
    if spec is None or not spec.memory_tokens:
        return None
    nz = spec.template_feat_size ** 2
    return nz, spec.memory_tokens, spec.memory_tokens + nz


def _profile(builder, network, max_batch: int, onnx_path: Path):
    """One optimization profile for the batch axis (and the template-token axis of a vit search graph with the
    template memory); None when every input is static."""
    profile = builder.create_optimization_profile()
    dynamic = False
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = tuple(tensor.shape)
        tokens = _token_range(onnx_path) if len(shape) == 3 and shape[1] < 0 else None
        fixed = shape[2:] if tokens else shape[1:]
        if any(d < 0 for d in fixed):
            raise ModelError(f"{onnx_path}: input {tensor.name} has dynamic axes besides the batch: {shape}")
        if shape[0] >= 0 and max_batch > 1 and shape[0] != max_batch:
            raise InputError(f"{onnx_path}: input {tensor.name} has a fixed batch of {shape[0]}; export it with a "
                             f"dynamic batch axis to build for batches up to {max_batch}")
        if shape[0] < 0 or tokens:
            dynamic = True
            batch = (1, 1, max_batch) if shape[0] < 0 else (shape[0],) * 3
            lo, opt, hi = ((b, *((t,) if tokens else ()), *fixed) for b, t in zip(batch, tokens or batch))
            profile.set_shape(tensor.name, lo, opt, hi)
    return profile if dynamic else None


def _set_workspace(trt, config, workspace_gb: float) -> None:
    nbytes = int(workspace_gb * (1 << 30))
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, nbytes)
    else:  # TensorRT < 8.4
        config.max_workspace_size = nbytes


def _set_precision(trt, builder, config, options: BuildOptions, explicit_int8: bool, calibrator, profile) -> str:
    """Set the precision flags; returns the precision the engine really has."""
    precision = "int8" if explicit_int8 else options.precision
    if precision in ("fp16", "int8"):
        if not getattr(builder, "platform_has_fast_fp16", True):
            warnings.warn("this GPU has no fast FP16; TensorRT will still build, slower", stacklevel=3)
        config.set_flag(trt.BuilderFlag.FP16)  # INT8 engines keep non-quantized layers in FP16
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if not explicit_int8:
            if calibrator is None:
                raise InputError("INT8 without Quantize/Dequantize nodes in the ONNX needs calibration data: pass "
                                 "calib= (edgetrack-export --int8 --data DIR)")
            config.int8_calibrator = calibrator
            if profile is not None and hasattr(config, "set_calibration_profile"):
                config.set_calibration_profile(profile)
    return precision


def _set_dla(trt, builder, config, dla_core: int | None) -> None:
    if dla_core is None:
        return
    cores = int(getattr(builder, "num_DLA_cores", 0))
    if dla_core >= cores:
        raise InputError(f"DLA core {dla_core} does not exist: this device has {cores} DLA cores "
                         "(Jetson AGX Xavier, Xavier NX and AGX Orin / Orin NX have them; Orin Nano has none)")
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = dla_core
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)  # layers the DLA cannot run go to the GPU


def build_engine(trt, onnx_path: Path, options: BuildOptions, calibrator=None) -> tuple[bytes, str]:
    """Serialized engine bytes for ``onnx_path`` and the precision it was built in."""
    builder = trt.Builder(trt_logger(trt))
    network, _parser = _network(trt, builder, onnx_path)  # the parser must outlive the network
    config = builder.create_builder_config()
    _set_workspace(trt, config, options.workspace_gb)
    profile = _profile(builder, network, options.max_batch, onnx_path)
    if profile is not None:
        config.add_optimization_profile(profile)
    explicit = has_qdq(trt, network)
    precision = _set_precision(trt, builder, config, options, explicit, calibrator, profile)
    _set_dla(trt, builder, config, options.dla_core)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(f"TensorRT could not build an engine from {onnx_path} ({precision}); its log above says why")
    return bytes(serialized), precision
