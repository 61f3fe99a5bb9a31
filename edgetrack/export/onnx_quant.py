"""ONNX Runtime INT8: static QDQ quantization of the template and search graphs.

Each graph is calibrated on its own inputs from a :class:`CalibrationSet` (the search graph on the search crops
*and* the FP32 template tensors of the paired templates). Weights are quantized per output channel, activations
per tensor as uint8 (ONNX Runtime's fast U8S8 kernels on x86: int8 activations ran the NanoTrack V2 search graph
2x slower than FP32, uint8 ones as fast); the result keeps float32 inputs and outputs, so the runtime feeds it
exactly like the FP32 graphs. ``symmetric=True`` gives int8 zero-point-free activations, the form TensorRT's
explicit quantization expects.
"""
from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError, missing_extra
from ..spec import TrackerSpec
from .calibration import CalibrationSet
from .onnx_export import write_graph

GRAPHS = ("template", "search")


@dataclass(frozen=True)
class QuantOptions:
    """``method``: ONNX Runtime's calibration method (``minmax``, ``percentile``, ``entropy``)."""

    per_channel: bool = True
    symmetric: bool = False
    method: str = "minmax"
    batch: int = 8


class _Reader:
    """ONNX Runtime calibration data reader over a fixed list of feeds."""

    def __init__(self, feeds: list[dict]) -> None:
        self._feeds = iter(feeds)

    def get_next(self):
        return next(self._feeds, None)

    def rewind(self) -> None:  # some calibrators read the data twice
        pass


def _calibration_method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if name not in methods:
        raise ValueError(f"unknown calibration method {name!r}; choose from {sorted(methods)}")
    return methods[name]


def _preprocess(src: Path, dst: Path) -> Path:
    """ONNX Runtime's pre-quantization pass (shape inference, graph fusions); the source graph if it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
        return dst
    except Exception:  # pre-processing only helps; quantizing the graph as exported still works
        return src


def quantize_graph(src: Path, dst: Path, feeds: list[dict], options: QuantOptions = QuantOptions()) -> None:
    """Quantize one ONNX graph to QDQ INT8, calibrated on ``feeds``; writes ``dst`` (no metadata)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    extra = {"ActivationSymmetric": options.symmetric, "WeightSymmetric": True,
             "CalibMaxIntermediateOutputs": 16}
    activations = QuantType.QInt8 if options.symmetric else QuantType.QUInt8
    with tempfile.TemporaryDirectory() as work:
        pre = _preprocess(src, Path(work) / "pre.onnx")
        quantize_static(str(pre), str(dst), _Reader(feeds), quant_format=QuantFormat.QDQ,
                        per_channel=options.per_channel, activation_type=activations,
                        weight_type=QuantType.QInt8, calibrate_method=_calibration_method(options.method),
                        extra_options=extra)


def quantize_onnx_int8(fp32_dir: Path, out_dir: Path, spec: TrackerSpec, calib: CalibrationSet,
                       options: QuantOptions = QuantOptions()) -> dict[str, Path]:
    """Write ``out_dir/template.onnx`` and ``out_dir/search.onnx``: the FP32 graphs of ``fp32_dir`` quantized to
    QDQ INT8 on ``calib``, with the spec in their metadata. Returns the two paths."""
    try:
        import onnx
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        raise missing_extra("onnx", "export", "ONNX Runtime INT8 export") from exc
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    feeds = {"template": list(calib.template_batches(options.batch)),
             "search": list(calib.search_batches(options.batch))}
    paths = {}
    for graph in GRAPHS:
        with tempfile.TemporaryDirectory() as work:
            raw = Path(work) / f"{graph}.onnx"
            try:
                quantize_graph(Path(fp32_dir) / f"{graph}.onnx", raw, feeds[graph], options)
            except Exception as exc:
                raise ModelError(f"INT8 quantization of the {graph} graph failed: {exc}") from exc
            write_graph(onnx.load(str(raw)), out_dir / f"{graph}.onnx", spec, graph, "int8")
        paths[graph] = out_dir / f"{graph}.onnx"
    return paths
