"""OpenVINO IR export: ``template.xml/.bin`` and ``search.xml/.bin`` converted from the FP32 ONNX graphs.

FP32 keeps float32 weights, FP16 compresses them (``compress_to_fp16``), INT8 is NNCF post-training quantization
on paired calibration inputs; with accuracy control, NNCF's ``quantize_with_accuracy_control`` keeps the search
graph's most harmful quantized operations in float until the tracking success AUC on validation sequences is
within ``max_drop`` of the float model. Each IR carries the spec in its ``rt_info`` (``edgetrack_spec``, plus
``edgetrack_graph``), a top-level ``<edgetrack_spec value="..."/>`` child of ``<rt_info>`` in the XML.

openvino and nncf are imported only here.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..data.sequence import Sequence
from ..errors import ModelError, missing_extra
from ..runtime.backends.openvino_backend import compile_model
from ..spec import METADATA_KEY, TrackerSpec
from .calibration import CalibrationSet

GRAPHS = ("template", "search")


def _openvino():
    try:
        import openvino as ov
    except ImportError as exc:
        raise missing_extra("openvino", "openvino", "OpenVINO export") from exc
    return ov


def _nncf():
    try:
        import nncf
    except ImportError as exc:
        raise missing_extra("nncf", "openvino", "OpenVINO INT8 export") from exc
    return nncf


class OpenVinoGraphs:
    """Runs a pair of OpenVINO models (IR paths or in-memory models) on the CPU: the backend contract of
    :class:`edgetrack.runtime.backends.Backend` (``run_template``, ``run_search``)."""

    name = "openvino"

    def __init__(self, template, search, threads: int = 1) -> None:
        ov = _openvino()
        # compiled by the openvino backend, with its latency settings
        self.template = template if isinstance(template, ov.CompiledModel) else compile_model(
            Path(template) if isinstance(template, (str, os.PathLike)) else template, "cpu", threads)
        self.search = search if isinstance(search, ov.CompiledModel) else compile_model(
            Path(search) if isinstance(search, (str, os.PathLike)) else search, "cpu", threads)
        self._s_in = [p.get_any_name() for p in self.search.inputs]

    @classmethod
    def from_folder(cls, folder: Path, threads: int = 1) -> OpenVinoGraphs:
        return cls(Path(folder) / "template.xml", Path(folder) / "search.xml", threads)

    def run_template(self, z: np.ndarray) -> list[np.ndarray]:
        out = self.template({self.template.inputs[0].get_any_name(): z})
        return [np.asarray(out[o]) for o in self.template.outputs]

    def run_search(self, x: np.ndarray, zfs: list[np.ndarray]) -> list[np.ndarray]:
        feeds = {self._s_in[0]: x, **{n: zf for n, zf in zip(self._s_in[1:], zfs)}}
        out = self.search(feeds)
        return [np.asarray(out[o]) for o in self.search.outputs]


@dataclass(frozen=True)
class AccuracyControl:
    """NNCF accuracy control: the search graph's quantization may cost at most ``max_drop`` success AUC on
    ``sequences``; ``evaluate(runner, sequences) -> per-sequence AUCs`` tracks sequences with a pair of graphs
    (a :class:`OpenVinoGraphs`)."""

    max_drop: float
    sequences: tuple[Sequence, ...]
    evaluate: Callable[[object, tuple[Sequence, ...]], list[float]]


@dataclass(frozen=True)
class OpenVinoExport:
    folder: Path
    template: Path
    search: Path
    precision: str


def ir_rt_info(model, spec: TrackerSpec, graph: str, precision: str) -> None:
    """Stamp the spec (and graph name, precision, edgetrack version) into a model's rt_info."""
    model.set_rt_info(spec.to_json(), METADATA_KEY)
    model.set_rt_info(graph, "edgetrack_graph")
    model.set_rt_info(precision, "edgetrack_precision")
    model.set_rt_info(__version__, "edgetrack_version")


def _save(model, folder: Path, graph: str, compress: bool) -> Path:
    """``ov.save_model`` into a scratch folder beside ``folder``, then move the .xml/.bin pair into place."""
    ov = _openvino()
    with tempfile.TemporaryDirectory(dir=folder, prefix=".tmp-ir-") as work:
        ov.save_model(model, str(Path(work) / f"{graph}.xml"), compress_to_fp16=compress)
        os.replace(Path(work) / f"{graph}.bin", folder / f"{graph}.bin")
        os.replace(Path(work) / f"{graph}.xml", folder / f"{graph}.xml")
    return folder / f"{graph}.xml"


def _quantize(model, feeds: list[dict], preset_name: str = "performance"):
    nncf = _nncf()
    preset = nncf.QuantizationPreset.MIXED if preset_name == "mixed" else nncf.QuantizationPreset.PERFORMANCE
    return nncf.quantize(model, nncf.Dataset(feeds), preset=preset, subset_size=len(feeds))


def _quantize_search_ac(model, template_int8, feeds: list[dict], control: AccuracyControl):
    """The search graph quantized under accuracy control; the INT8 template graph stays fixed."""
    nncf = _nncf()

    def validate(compiled_search, items) -> tuple[float, list[float]]:
        seqs = list(items)
        aucs = control.evaluate(OpenVinoGraphs(template_int8, compiled_search), tuple(seqs))
        return float(np.mean(aucs)), [float(a) for a in aucs]

    return nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(feeds), nncf.Dataset(list(control.sequences)), validate,
        max_drop=max(0.0, control.max_drop), drop_type=nncf.DropType.ABSOLUTE, subset_size=len(feeds))


def _int8_models(models: dict, calib: CalibrationSet, control: AccuracyControl | None) -> dict:
    feeds_t = list(calib.template_batches(1))
    feeds_s = list(calib.search_batches(1))
    template = _quantize(models["template"], feeds_t)
    if control is None:
        return {"template": template, "search": _quantize(models["search"], feeds_s)}
    compiled_t = compile_model(template, "cpu", threads=1)
    return {"template": template, "search": _quantize_search_ac(models["search"], compiled_t, feeds_s, control)}


def export_openvino(onnx_dir: Path, out_dir: Path, spec: TrackerSpec, precision: str = "fp32",
                    calib: CalibrationSet | None = None, control: AccuracyControl | None = None) -> OpenVinoExport:
    """Convert ``onnx_dir``'s FP32 graphs to OpenVINO IR at ``precision`` ("fp32", "fp16", "int8") in ``out_dir``.

    ``int8`` needs ``calib``; ``control`` turns on accuracy-controlled quantization of the search graph.
    """
    ov = _openvino()
    if precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"OpenVINO precision must be fp32, fp16 or int8, got {precision!r}")
    if precision == "int8" and calib is None:
        raise ModelError("OpenVINO INT8 export needs calibration data")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        models = {g: ov.convert_model(str(Path(onnx_dir) / f"{g}.onnx")) for g in GRAPHS}
    except Exception as exc:
        raise ModelError(f"OpenVINO could not convert the ONNX graphs in {onnx_dir}: {exc}") from exc
    if precision == "int8":
        models = _int8_models(models, calib, control)
    for graph, model in models.items():
        ir_rt_info(model, spec, graph, precision)
        _save(model, folder, graph, compress=precision == "fp16")
    return OpenVinoExport(folder, folder / "template.xml", folder / "search.xml", precision)


def remove_ir(folder: Path) -> None:
    """Delete the IR files this module writes (used before re-exporting into a folder)."""
    for graph in GRAPHS:
        for suffix in (".xml", ".bin"):
            (Path(folder) / f"{graph}{suffix}").unlink(missing_ok=True)
    for stale in Path(folder).glob(".tmp-ir-*"):
        shutil.rmtree(stale, ignore_errors=True)
