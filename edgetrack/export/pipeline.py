"""The export pipeline behind ``edgetrack-export``: one validated :class:`ExportRequest` in, exported folders,
their gate results and ``export.json`` out.

Every format starts from the FP32 ONNX graphs (the reference the gate compares against): ONNX INT8 quantizes
them, OpenVINO converts them, TensorRT builds engines from them. Calibration pairs are cut once and shared.
Each exported folder keeps the source model's confidence calibration; it is re-fitted on its own outputs only
where the conversion moved the scores beyond a tolerance and ``--data`` gives real footage (:mod:`.recalibrate`),
before its accuracy gate runs.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import __version__
from ..spec import TrackerSpec
from .calibration import CalibrationConfig, CalibrationSet, build_calibration_set
from .formats import ExportRequest, get_format
from .gate import (
    REPORT_NAME,
    GateRow,
    GateSettings,
    TrackingScore,
    error_row,
    gate_export,
    generated_only,
    open_runner,
    parity_inputs,
    track_sequences,
    tracker_factory,
    validation_sequences,
    write_report,
)
from .recalibrate import keep_or_refit, recalibration_sequences, score_shift
from .swap import staging_folder, swap_in


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: one gate row per format, the reference score and notes for the user."""

    out: Path
    rows: tuple[GateRow, ...]
    reference: TrackingScore
    validation: str
    notes: tuple[str, ...] = ()

    @property
    def failed(self) -> tuple[GateRow, ...]:
        return tuple(r for r in self.rows if r.status != "ok")


@dataclass(frozen=True)
class _Context:
    """Shared state of one export run."""

    request: ExportRequest
    net: object
    spec: TrackerSpec
    ref_dir: Path
    work: Path
    calib: CalibrationSet | None
    settings: GateSettings
    reference_graphs: object  # the FP32 ONNX graphs, what a conversion's score shift is measured against
    recal: tuple[tuple, str] = ((), "")  # real sequences to re-fit the confidence on (--data), and their source
    recalibrated: dict = field(default_factory=dict)  # format label -> what happened to its calibration
    progress: bool = False


def target_folder(request: ExportRequest, fmt: str) -> Path:
    return request.out / f"{fmt}-{request.precision}" if request.nested else request.out


def calibration_for(request: ExportRequest, spec: TrackerSpec, ref_dir: Path, net,
                    progress: bool) -> CalibrationSet | None:
    """Calibration pairs from ``--data`` (None without data); template tensors from the FP32 ONNX template."""
    if not request.data:
        return None
    from ..runtime.backends.ort import create_session
    from .gate import gate_tracker

    sess = create_session(ref_dir / "template.onnx", threads=1)
    config = CalibrationConfig(n_pairs=request.calib_pairs, seed=request.seed, progress=progress)
    return build_calibration_set(spec, request.model, request.data, lambda z: sess.run(None, {"z": z}),
                                 tuple(net.template_names), config,
                                 make_tracker=lambda: gate_tracker(ref_dir, "onnxruntime"))


def _accuracy_control(ctx: _Context):
    from .gate import hosted_tracker
    from .openvino_export import AccuracyControl

    def evaluate(runner, seqs) -> list[float]:
        return list(track_sequences(lambda: hosted_tracker(ctx.ref_dir, runner), tuple(seqs)).aucs)

    return AccuracyControl(ctx.request.max_drop, ctx.settings.sequences, evaluate)


def _tensorrt(ctx: _Context, folder: Path) -> None:
    from . import tensorrt_export
    from .onnx_quant import QuantOptions, quantize_onnx_int8

    req = ctx.request
    onnx_dir = ctx.ref_dir
    if req.precision == "int8":  # explicit quantization: a symmetric QDQ graph
        onnx_dir = ctx.work / "onnx-int8-qdq"
        quantize_onnx_int8(ctx.ref_dir, onnx_dir, ctx.spec, ctx.calib, QuantOptions(symmetric=True))
    tensorrt_export.build_engines(onnx_dir, folder, req.precision, workspace_gb=req.workspace_gb, device=req.device,
                                  dla_core=req.dla_core, calib=ctx.calib, max_batch=1)
    if not (folder / "spec.json").exists():
        from ..data.fileio import atomic_write_text

        atomic_write_text(folder / "spec.json", ctx.spec.to_json() + "\n")


def export_format(ctx: _Context, fmt: str, folder: Path) -> None:
    """Write one format at the request's precision into ``folder``."""
    req = ctx.request
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        if req.precision == "int8":
            from .onnx_quant import quantize_onnx_int8

            quantize_onnx_int8(ctx.ref_dir, folder, ctx.spec, ctx.calib)
        elif folder.resolve() != ctx.ref_dir.resolve():
            for graph in ("template.onnx", "search.onnx"):
                shutil.copy2(ctx.ref_dir / graph, folder / graph)
    elif fmt == "openvino":
        from .openvino_export import export_openvino

        control = _accuracy_control(ctx) if req.accuracy_control and req.precision == "int8" else None
        export_openvino(ctx.ref_dir, folder, ctx.spec, req.precision, ctx.calib, control)
    elif fmt == "tensorrt":
        _tensorrt(ctx, folder)
    else:
        raise ValueError(f"no exporter for {fmt!r}")


def _one(ctx: _Context, fmt: str) -> GateRow:
    folder = target_folder(ctx.request, fmt)
    backend = get_format(fmt).backend
    is_ref = folder.resolve() == ctx.ref_dir.resolve()
    try:
        export_format(ctx, fmt, folder)
        runner = open_runner(folder, fmt, backend)
        shift = None if is_ref else score_shift(ctx.spec, ctx.reference_graphs, runner, ctx.settings.parity_z,
                                                ctx.settings.parity_x)
        done = keep_or_refit(folder, backend, shift, *ctx.recal, progress=ctx.progress)
        ctx.recalibrated[f"{fmt}-{ctx.request.precision}"] = done
        if done["status"] == "refitted":
            runner = open_runner(folder, fmt, backend)  # the files now carry the new spec
    except Exception as exc:
        if not ctx.request.nested:
            raise
        return error_row(fmt, ctx.request.precision, folder, exc)
    return gate_export(folder, fmt, backend, ctx.request.precision, ctx.net, ctx.settings, ctx.ref_dir,
                       ctx.settings.reference if is_ref else None, runner)


def _reference_dir(request: ExportRequest, work: Path) -> Path:
    if "onnx" in request.formats and request.precision == "fp32":
        return target_folder(request, "onnx")
    return work / "onnx-fp32"


def _meta(ctx: _Context, validation: str) -> dict:
    req = ctx.request
    calib = None if ctx.calib is None else {"pairs": ctx.calib.n_pairs, "from_cache": ctx.calib.from_cache,
                                            "data": [str(p) for p in req.data]}
    return {"edgetrack_version": __version__, "model": str(req.model), "spec_name": ctx.spec.name,
            "precision": req.precision, "max_drop": req.max_drop, "accuracy_control": req.accuracy_control,
            "validation": {"source": validation, "generated_only": generated_only(validation),
                           "sequences": [s.name for s in ctx.settings.sequences],
                           "frames": sum(len(s) for s in ctx.settings.sequences)},
            "reference": {"export": "onnx-fp32", "auc": ctx.settings.reference.auc,
                          "update_ms_p50": ctx.settings.reference.update_ms_p50},
            "calibration": calib, "confidence_calibration": ctx.recalibrated}


def run_export(request: ExportRequest, progress: bool = True, shared: Path | None = None) -> ExportResult:
    """Export, gate and report every format of ``request``; raises on errors that stop the whole run.

    Everything is written and gated in a staging folder beside ``request.out`` and moved into place only when
    complete (:mod:`edgetrack.export.swap`): a run killed half-way keeps the previous export. ``shared`` is
    a shared data folder whose held-out set (``held_out_set``) the gate tracks when there is no ``--val-data``
    or ``--data`` (None: generated sequences; never a folder guessed from the install location).
    """
    final = request.out
    staging = staging_folder(final)
    try:
        staged = replace(request, out=staging)
        rows, meta, reference, validation = _export_all(staged, progress, shared)
        if generated_only(validation):
            request = replace(request, notes=(*request.notes, f"note: {validation}"))
        rows = tuple(replace(r, folder=str(final / Path(r.folder).relative_to(staging))) for r in rows)
        for row in rows:
            if request.nested:
                write_report(staging / Path(row.folder).relative_to(final) / REPORT_NAME, [row], meta)
        write_report(staging / REPORT_NAME, list(rows), {**meta, "notes": list(request.notes)})
        subfolders = tuple(target_folder(request, fmt).name for fmt in request.formats) if request.nested else ()
        swap_in(staging, final, subfolders)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(final, rows, reference, validation, request.notes)


def _export_all(request: ExportRequest, progress: bool, shared: Path | None):
    from ..models.io import load_checkpoint, with_search_size
    from .onnx_export import export_onnx

    net = with_search_size(load_checkpoint(request.model), request.search_size)
    with tempfile.TemporaryDirectory(prefix=".work-", dir=request.out) as tmp:  # inside the hidden staging folder
        work = Path(tmp)
        ref_dir = _reference_dir(request, work)
        export_onnx(net, ref_dir, opset=request.opset, simplify=request.simplify,
                    dynamic_batch=request.dynamic_batch)
        calib = calibration_for(request, net.spec, ref_dir, net, progress)
        seqs, validation = validation_sequences(request.val_data, request.data, request.val_frames, shared,
                                                request.seed)
        reference = track_sequences(tracker_factory(ref_dir, "onnx", "onnxruntime", ref_dir), seqs)
        z, x = parity_inputs(net.spec, calib, seed=request.seed, sequences=seqs)
        settings = GateSettings(request.max_drop, seqs, reference, z, x)
        graphs = open_runner(ref_dir, "onnx", "onnxruntime")
        ctx = _Context(request, net, net.spec, ref_dir, work, calib, settings, graphs,
                       recalibration_sequences(request.data), progress=progress)
        rows = tuple(_one(ctx, fmt) for fmt in request.formats)
        meta = _meta(ctx, validation)
    return rows, meta, reference, validation
