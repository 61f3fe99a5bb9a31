"""The table of export formats and the validation of an export request against it.

One :data:`FORMATS` table (name, file suffix, precisions, needs a GPU, exporter) drives every check of
``edgetrack-export``'s flags: ``--fp16`` and ``--int8`` are exclusive, a format only offers its precisions,
TensorRT needs a GPU, INT8 needs calibration data. ``--format auto`` picks TensorRT where a GPU and TensorRT are
present, else OpenVINO where it is installed, else ONNX. What this machine offers is a :class:`Platform`, passed
explicitly so the rules can be checked for any machine.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, ModelNotFoundError, missing_extra

PRECISIONS = ("fp32", "fp16", "int8")
MIN_CALIB_PAIRS = 300  # fewer pairs than this: INT8 ranges are estimated from too little data (warned)
#: The ONNX opsets torch's TorchScript exporter (the one edgetrack uses) writes.
OPSETS = (7, 20)
DEFAULT_MAX_DROP = 0.01
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass(frozen=True)
class ExportFormat:
    """One deployable format: its graph file suffix, the precisions it offers, whether it needs a GPU, the
    tool that writes it, the pip extra that provides that tool and the runtime backend that runs the files."""

    name: str
    suffix: str
    precisions: tuple[str, ...]
    needs_gpu: bool
    exporter: str
    extra: str = "export"
    backend: str = "onnxruntime"


# ONNX offers no fp16: ONNX Runtime's CPU provider has almost no fp16 kernels, and TensorRT builds fp16 engines
# from the fp32 graph itself, so an fp16 ONNX file would only be slower or redundant.
FORMATS = (
    ExportFormat("onnx", ".onnx", ("fp32", "int8"), False,
                 "torch.onnx (TorchScript exporter) + onnxslim; int8: ONNX Runtime QDQ static quantization",
                 "export", "onnxruntime"),
    ExportFormat("openvino", ".xml", ("fp32", "fp16", "int8"), False,
                 "openvino.convert_model from the ONNX graphs; int8: NNCF post-training quantization",
                 "openvino", "openvino"),
    ExportFormat("tensorrt", ".engine", ("fp32", "fp16", "int8"), True,
                 "TensorRT builder from the ONNX graphs (int8: QDQ graph or entropy calibration)",
                 "tensorrt", "tensorrt"),
)
FORMAT_CHOICES = ("auto", "all", *(f.name for f in FORMATS))


def get_format(name: str) -> ExportFormat:
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise InputError(f"unknown export format {name!r}; choose from {', '.join(FORMAT_CHOICES)}")


@dataclass(frozen=True)
class Platform:
    """What this machine offers the exporters."""

    gpu: bool
    tensorrt: bool
    openvino: bool


def detect_platform() -> Platform:
    """Probe for an NVIDIA GPU, TensorRT and OpenVINO without importing more than needed."""
    gpu = trt = False
    try:
        from . import tensorrt_export
    except ImportError:
        tensorrt_export = None
    if tensorrt_export is not None:
        gpu = bool(tensorrt_export.gpu_available())
        trt = bool(tensorrt_export.tensorrt_available())
    openvino = importlib.util.find_spec("openvino") is not None and importlib.util.find_spec("nncf") is not None
    return Platform(gpu=gpu, tensorrt=trt, openvino=openvino)


@dataclass(frozen=True)
class ExportRequest:
    """A validated ``edgetrack-export`` call. ``formats`` are resolved (no ``auto``/``all``); ``nested`` means
    one ``<format>-<precision>`` subfolder per format under ``out``; ``accuracy_control`` is set when
    ``--max-drop`` was given, which turns on NNCF's accuracy-controlled INT8 quantization."""

    model: Path
    formats: tuple[str, ...]
    precision: str
    out: Path
    nested: bool = False
    data: tuple[Path, ...] = ()
    calib_pairs: int = MIN_CALIB_PAIRS
    max_drop: float = DEFAULT_MAX_DROP
    accuracy_control: bool = False
    val_data: Path | None = None
    val_frames: int | None = None
    workspace_gb: float = 2.0
    device: int = 0
    dla_core: int | None = None
    opset: int = 17
    simplify: bool = True
    dynamic_batch: bool = True
    seed: int = 0
    notes: tuple[str, ...] = ()
    search_size: int | None = None


@dataclass(frozen=True)
class ExportArgs:
    """The raw command-line values, before validation (see :func:`validate_request`)."""

    model: str = "default"
    format: str = "auto"
    fp16: bool = False
    int8: bool = False
    data: tuple[str, ...] = ()
    calib_pairs: int = MIN_CALIB_PAIRS
    max_drop: float | None = None
    val_data: str | None = None
    val_frames: int | None = None
    workspace: float = 2.0
    device: int = 0
    dla: int | None = None
    opset: int = 17
    out: str | None = None
    simplify: bool = True
    dynamic_batch: bool = True
    seed: int = 0
    search_size: int | None = None


def resolve_model(model: str) -> Path:
    """``"default"`` -> the bundled student's checkpoint; else the given ``.safetensors`` path, which must exist."""
    if model == "default":
        from ..runtime.model_files import default_model_dir

        path = default_model_dir() / "model.safetensors"
        if not path.exists():
            raise InputError("no default model is bundled with this build; give a checkpoint")
        return path
    path = Path(model).expanduser()
    if path.suffix != ".safetensors":
        raise InputError(f"{path}: edgetrack-export takes an edgetrack checkpoint (.safetensors)")
    if not path.is_file():
        raise ModelNotFoundError(f"model file not found: {path}")
    return path


def precision_of(args: ExportArgs) -> str:
    if args.fp16 and args.int8:
        raise InputError("--fp16 and --int8 are exclusive: choose one precision")
    return "int8" if args.int8 else "fp16" if args.fp16 else "fp32"


def _unavailable(fmt: ExportFormat, platform: Platform) -> str | None:
    """Why ``fmt`` cannot be written on this platform, or None."""
    if fmt.needs_gpu and not platform.gpu:
        return f"{fmt.name} needs an NVIDIA GPU and none was found"
    if fmt.name == "tensorrt" and not platform.tensorrt:
        return "tensorrt needs the 'tensorrt' package (pip install 'edgetrack[tensorrt]')"
    if fmt.name == "openvino" and not platform.openvino:
        return "openvino needs the 'openvino' and 'nncf' packages (pip install 'edgetrack[openvino]')"
    return None


def _check_one(fmt: ExportFormat, precision: str, platform: Platform) -> None:
    if precision not in fmt.precisions:
        others = [f.name for f in FORMATS if precision in f.precisions]
        raise InputError(f"--format {fmt.name} offers {'/'.join(fmt.precisions)}, not {precision}; "
                         f"{precision} is offered by {', '.join(others)}")
    if fmt.needs_gpu and not platform.gpu:
        raise InputError(f"--format {fmt.name} needs an NVIDIA GPU with CUDA, and none was found on this machine; "
                         "use --format onnx or --format openvino here, or export on the device")
    if fmt.name == "tensorrt" and not platform.tensorrt:
        raise missing_extra("tensorrt", "tensorrt", "TensorRT export")
    if fmt.name == "openvino" and not platform.openvino:
        raise missing_extra("openvino", "openvino", "OpenVINO export")


def resolve_formats(name: str, precision: str, platform: Platform) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(formats to write, notes on formats left out) for ``--format name``."""
    if name == "auto":
        chosen = "tensorrt" if platform.gpu and platform.tensorrt else "openvino" if platform.openvino else "onnx"
        if precision not in get_format(chosen).precisions:  # onnx has no fp16: fall back to fp32
            raise InputError(f"--format auto picked {chosen} (no GPU with TensorRT, no OpenVINO here), which "
                             f"offers {'/'.join(get_format(chosen).precisions)}, not {precision}; install "
                             "'edgetrack[openvino]' for fp16 on a CPU")
        return (chosen,), (f"--format auto: {chosen}",)
    if name == "all":
        chosen, notes = [], []
        for fmt in FORMATS:
            why = _unavailable(fmt, platform) or (
                None if precision in fmt.precisions else f"{fmt.name} offers no {precision}")
            if why:
                notes.append(f"skipped {fmt.name}: {why}")
            else:
                chosen.append(fmt.name)
        if not chosen:
            raise InputError(f"--format all: no format can be written at {precision} here ({'; '.join(notes)})")
        return tuple(chosen), tuple(notes)
    _check_one(get_format(name), precision, platform)
    return (name,), ()


def check_data(paths: tuple[str, ...]) -> tuple[Path, ...]:
    """``--data`` paths: each an existing dataset folder or video file."""
    out = []
    for text in paths:
        path = Path(text).expanduser()
        if not path.exists():
            raise InputError(f"--data {path}: no such file or folder")
        if path.is_file() and path.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(f"--data {path}: expected a dataset folder or a video file ({', '.join(VIDEO_SUFFIXES)})")
        out.append(path.resolve())
    return tuple(out)


def _check_numbers(args: ExportArgs, formats: tuple[str, ...]) -> None:
    if args.calib_pairs < 1:
        raise InputError(f"--calib-pairs must be at least 1, got {args.calib_pairs}")
    if args.workspace <= 0:
        raise InputError(f"--workspace must be a positive number of GB, got {args.workspace}")
    if args.device < 0:
        raise InputError(f"--device must be a GPU index (0, 1, ...), got {args.device}")
    if args.val_frames is not None and args.val_frames < 2:
        raise InputError(f"--val-frames must be at least 2, got {args.val_frames}")
    if args.dla is not None:
        if "tensorrt" not in formats:
            raise InputError("--dla selects a Jetson DLA core for TensorRT engines; it needs --format tensorrt")
        if args.dla < 0:
            raise InputError(f"--dla must be a DLA core index (0 or 1), got {args.dla}")
    if args.max_drop is not None and not 0.0 <= args.max_drop <= 1.0:  # NaN fails too
        raise InputError(f"--max-drop must be a success-AUC drop from 0 to 1, got {args.max_drop}")
    if not OPSETS[0] <= args.opset <= OPSETS[1]:
        raise InputError(f"--opset must be from {OPSETS[0]} to {OPSETS[1]} (the opsets torch's exporter writes), "
                         f"got {args.opset}")
    if args.search_size is not None and not 8 <= args.search_size <= 4096:
        raise InputError(f"--search-size must be a crop side in pixels (e.g. 239 or 255), got {args.search_size}")


def default_out(model: str, model_path: Path, format_name: str, precision: str) -> Path:
    stem = "default" if model == "default" else model_path.stem
    tag = format_name if precision == "fp32" else f"{format_name}_{precision}"
    base = Path.cwd() if model == "default" else model_path.parent
    return base / f"{stem}_{tag}"


def validate_request(args: ExportArgs, platform: Platform) -> ExportRequest:
    """Check the flags against :data:`FORMATS` and this platform; raise :class:`InputError` (or
    :class:`BackendUnavailableError` naming the extra to install) with a message saying what to change."""
    precision = precision_of(args)
    if args.format not in FORMAT_CHOICES:
        raise InputError(f"unknown --format {args.format!r}; choose from {', '.join(FORMAT_CHOICES)}")
    formats, notes = resolve_formats(args.format, precision, platform)
    _check_numbers(args, formats)
    data = check_data(args.data)
    if precision == "int8" and not data:
        raise InputError("--int8 needs calibration data: --data DIR (a dataset folder such as DTB70, or video "
                         f"files); about {MIN_CALIB_PAIRS} template/search pairs are cut from it")
    if precision == "int8" and args.calib_pairs < MIN_CALIB_PAIRS:
        notes += (f"warning: --calib-pairs {args.calib_pairs} is below {MIN_CALIB_PAIRS}; INT8 ranges estimated "
                  "from few pairs may cost accuracy",)
    val_data = None
    if args.val_data is not None:
        val_data = Path(args.val_data).expanduser()
        if not val_data.is_dir():
            raise InputError(f"--val-data {val_data}: no such folder")
    model_path = resolve_model(args.model)
    nested = args.format == "all"
    out = Path(args.out) if args.out else default_out(args.model, model_path, "export" if nested else formats[0],
                                                      precision)
    return ExportRequest(
        model=model_path, formats=formats, precision=precision, out=out, nested=nested, data=data,
        calib_pairs=args.calib_pairs, max_drop=DEFAULT_MAX_DROP if args.max_drop is None else args.max_drop,
        accuracy_control=args.max_drop is not None, val_data=val_data, val_frames=args.val_frames,
        workspace_gb=args.workspace, device=args.device, dla_core=args.dla, opset=args.opset,
        simplify=args.simplify, dynamic_batch=args.dynamic_batch, seed=args.seed, notes=notes,
        search_size=args.search_size)
