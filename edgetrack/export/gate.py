"""The accuracy gate every export passes through.

(1) Output parity against the torch model on sample crops (calibration pairs when there are some, else pairs cut
from the validation sequences), with a tolerance per precision; (2) tracking accuracy: success AUC on validation
sequences, compared with the FP32 ONNX export's AUC on the same sequences. An export whose parity is off or whose
AUC drops by more than ``max_drop`` is marked ``failed``; its files are kept. The gate also measures the update
latency (median, one thread) and the size on disk, and writes everything to ``export.json``.

Exported folders are loaded through :class:`edgetrack.Tracker` and the runtime backends. Where the runtime has
no backend for a format, a graph runner from the exporter stands in, hosted by a tracker on the FP32 ONNX
reference (same spec, same crop and decoding code).
"""
from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..data.fileio import atomic_write_text
from ..data.sequence import Sequence
from ..errors import DataError, EdgeTrackError, UngatedModelWarning
from ..evaluation.runner import TrackingScore, track_sequences
from ..geometry import to_network_input
from ..spec import TrackerSpec
from .calibration import SEARCH_INPUT, TEMPLATE_INPUT, CalibrationSet

#: Parity tolerance per precision: max |exported - torch| / max(1, max |torch|) over every output, end to end
#: (template graph then search graph). Measured on calibration crops from the dev split: FP32 ~1e-6, OpenVINO FP16
#: ~1e-3 (student) / ~4e-3 (NanoTrack V2); INT8 0.06 (ORT) / 0.15 (OpenVINO) on the student, 0.45 / 0.20 on
#: NanoTrack V2, whose tracking AUC did not drop. So the INT8 bound only catches broken graphs (a network with other
#: weights is off by ~1); the AUC comparison is what judges INT8.
TOLERANCES = {"fp32": 1e-4, "fp16": 1e-2, "int8": 0.5}
PARITY_PAIRS = 8
REPORT_NAME = "export.json"
N_SYNTHETIC = 4
#: The gate's source line when it tracked generated sequences: said plainly in the output and in ``export.json``.
GENERATED_ONLY = (f"synthetic: {N_SYNTHETIC} generated sequences only, no real footage (parity and AUC checked on "
                  "them; give --val-data or --data to check on real video)")


@dataclass(frozen=True)
class GateRow:
    """One export's line in the table and in ``export.json``."""

    format: str
    precision: str
    folder: str
    auc: float | None = None
    auc_drop: float | None = None
    update_ms_p50: float | None = None
    size_mb: float | None = None
    parity: dict[str, float] = field(default_factory=dict)
    parity_tolerance: float | None = None
    status: str = "ok"
    message: str = ""

    @property
    def label(self) -> str:
        return f"{self.format}-{self.precision}"


@dataclass(frozen=True)
class GateSettings:
    """What a gate compares against: validation sequences, the reference AUC and the parity inputs."""

    max_drop: float
    sequences: tuple[Sequence, ...]
    reference: TrackingScore
    parity_z: np.ndarray
    parity_x: np.ndarray


# ----------------------------------------------------------------------------------------------- sequences
def validation_sequences(val_data: Path | None, data: tuple[Path, ...], max_frames: int | None,
                         shared: Path | None = None, seed: int = 0) -> tuple[tuple[Sequence, ...], str]:
    """Sequences the gate tracks, and where they come from: ``val_data``; else the dataset folders of ``data``
    (sequences without a box on every frame left out); else the held-out set under the shared data folder
    (:func:`edgetrack.data.heldout.held_out_set`); else a small synthetic set."""
    from ..data import open_dataset

    if val_data is not None:
        seqs, source = open_dataset(val_data).sequences, str(val_data)
    else:
        folders = [p for p in data if p.is_dir()]
        seqs = ()
        for folder in folders:
            try:
                found = open_dataset(folder).sequences
            except DataError:  # a folder of videos: no ground truth to score
                continue
            seqs += tuple(s for s in found if getattr(s, "unscored_reason", None) is None)
        source = ", ".join(map(str, folders))
        if not seqs:
            seqs, source = _fallback_sequences(shared, seed)
    seqs = tuple(s.head(max_frames) for s in seqs)
    return seqs, source


def _fallback_sequences(shared: Path | None, seed: int) -> tuple[tuple[Sequence, ...], str]:
    if shared is not None and Path(shared).is_dir():
        from ..data.heldout import held_out_set

        try:
            held = held_out_set(shared)
            return held.dataset.sequences, f"{shared} (held-out set: {', '.join(sorted(set(held.part.values())))})"
        except DataError:  # no held-out sequence there: generated ones below
            pass
    from ..data.synthetic import synthetic_sequence

    seqs = tuple(synthetic_sequence(seed * 100 + i, n_frames=60) for i in range(N_SYNTHETIC))
    return seqs, GENERATED_ONLY


def generated_only(source: str) -> bool:
    """Whether the gate's sequences (their ``source`` as :func:`validation_sequences` says it) were generated."""
    return source == GENERATED_ONLY


# ----------------------------------------------------------------------------------------------- running
def open_runner(folder: Path, fmt: str, backend: str, threads: int = 1):
    """The two graphs of an exported folder behind the backend contract: the runtime's ``backend`` when it runs
    this folder, else (OpenVINO only) the exporter's own runner."""
    from ..runtime.backends import open_backend
    from ..runtime.model_files import locate

    try:
        return open_backend(locate(folder), backend, threads=threads)
    except EdgeTrackError:
        if fmt != "openvino":
            raise
    from .openvino_export import OpenVinoGraphs

    return OpenVinoGraphs.from_folder(folder, threads)


def hosted_tracker(host: Path, runner):
    """A :class:`Tracker` whose graphs are ``runner``; ``host`` is any folder of the same spec (the FP32 ONNX)."""
    tracker = gate_tracker(host, "onnxruntime")
    tracker.backend = runner
    return tracker


def gate_tracker(folder: Path, backend: str):
    """A one-thread :class:`Tracker` on a folder the gate is judging (so it has no passed ``export.json`` yet)."""
    from ..runtime.tracker import Tracker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UngatedModelWarning)
        return Tracker(folder, backend=backend, threads=1, allow_ungated=True)


def tracker_factory(folder: Path, fmt: str, backend: str, host: Path) -> Callable[[], object]:
    """Builds a one-thread tracker on an exported folder (see :func:`open_runner` for the fallback)."""
    def make():
        try:
            return gate_tracker(folder, backend)
        except EdgeTrackError:
            if fmt != "openvino":
                raise
        return hosted_tracker(host, open_runner(folder, fmt, backend))

    return make


# ----------------------------------------------------------------------------------------------- parity
def parity_inputs(spec: TrackerSpec, calib: CalibrationSet | None, n: int = PARITY_PAIRS, seed: int = 0,
                  sequences: tuple[Sequence, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Template and search inputs for the parity check (and the score shift of :mod:`.recalibrate`): calibration
    pairs, else pairs cut the same way from ``sequences`` (the gate's), else random crops."""
    if calib is not None:
        return calib.template_inputs[TEMPLATE_INPUT][:n], calib.search_inputs[SEARCH_INPUT][:n]
    if sequences:
        from .calibration import CalibrationConfig, cut_pairs

        try:
            crops = cut_pairs(list(sequences), spec, CalibrationConfig(n_pairs=n, seed=seed, progress=False))
        except DataError:  # no sequence with a visible target on two frames in a row
            crops = None
        if crops is not None:
            swap = spec.channel_order != "BGR"
            z = to_network_input(crops.templates[crops.template_index], spec.mean, spec.std, swap)
            return z, to_network_input(crops.searches, spec.mean, spec.std, swap)
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 256, (n, spec.exemplar_size, spec.exemplar_size, 3), dtype=np.uint8)
    x = rng.integers(0, 256, (n, spec.instance_size, spec.instance_size, 3), dtype=np.uint8)
    swap = spec.channel_order != "BGR"
    return to_network_input(z, spec.mean, spec.std, swap), to_network_input(x, spec.mean, spec.std, swap)


def parity(runner, net, z: np.ndarray, x: np.ndarray) -> dict[str, float]:
    """Per output, end to end: max |runner - torch| / max(1, max |torch|), one pair at a time."""
    import torch

    names = list(net.template_names) + list(net.output_names)
    worst = dict.fromkeys(names, 0.0)
    for i in range(len(z)):
        with torch.no_grad():
            zfs = net.template(torch.from_numpy(z[i:i + 1]))
            ref = [t.numpy() for t in (*zfs, *net.search(torch.from_numpy(x[i:i + 1]), *zfs))]
        got_z = runner.run_template(z[i:i + 1])
        got = list(got_z) + list(runner.run_search(x[i:i + 1], list(got_z)))
        for name, a, b in zip(names, got, ref):
            diff = float(np.abs(np.asarray(a, np.float32) - b).max() / max(1.0, float(np.abs(b).max())))
            worst[name] = max(worst[name], diff)
    return worst


def folder_size_mb(folder: Path) -> float:
    """Size of the graph files (every file but the reports) in MiB."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and p.name != REPORT_NAME]
    return sum(p.stat().st_size for p in files) / 2**20


# ----------------------------------------------------------------------------------------------- the gate
def judge(row: GateRow, max_drop: float) -> GateRow:
    """Set ``status``/``message`` from the parity and the AUC drop."""
    problems = []
    worst = max(row.parity.values(), default=0.0)
    if row.parity_tolerance is not None and worst > row.parity_tolerance:
        problems.append(f"parity {worst:.2e} exceeds the {row.precision} tolerance {row.parity_tolerance:.0e}")
    if row.auc_drop is not None and row.auc_drop > max_drop + 1e-12:
        problems.append(f"AUC drop {row.auc_drop:.4f} exceeds --max-drop {max_drop:g}")
    if not problems:
        return row
    return GateRow(**{**asdict(row), "status": "failed", "message": "; ".join(problems)})


def gate_export(folder: Path, fmt: str, backend: str, precision: str, net, settings: GateSettings,
                host: Path, score: TrackingScore | None = None, runner=None) -> GateRow:
    """Check one exported folder: parity, tracking AUC against the reference, latency, size. ``runner``: the
    folder's graphs when the caller has them open already."""
    runner = open_runner(folder, fmt, backend) if runner is None else runner
    diffs = parity(runner, net, settings.parity_z, settings.parity_x)
    if score is None:
        score = track_sequences(tracker_factory(folder, fmt, backend, host), settings.sequences)
    row = GateRow(fmt, precision, str(folder), score.auc, settings.reference.auc - score.auc, score.update_ms_p50,
                  folder_size_mb(folder), diffs, TOLERANCES[precision])
    return judge(row, settings.max_drop)


def error_row(fmt: str, precision: str, folder: Path, exc: BaseException) -> GateRow:
    return GateRow(fmt, precision, str(folder), status="failed", message=f"export failed: {exc}")


# ----------------------------------------------------------------------------------------------- reporting
def _fmt(value, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def format_table(rows: list[GateRow], reference: TrackingScore | None = None) -> str:
    """Markdown table: format x precision, AUC, AUC drop, update latency p50, size, parity, status."""
    lines = ["| export | AUC | AUC drop | update ms p50 | size MB | parity | status |",
             "|---|---|---|---|---|---|---|"]
    if reference is not None:
        lines.append(f"| reference onnx-fp32 | {_fmt(reference.auc, '.4f')} | - | "
                     f"{_fmt(reference.update_ms_p50, '.2f')} | - | - | - |")
    for r in rows:
        worst = max(r.parity.values(), default=None)
        lines.append(f"| {r.label} | {_fmt(r.auc, '.4f')} | {_fmt(r.auc_drop, '+.4f')} | "
                     f"{_fmt(r.update_ms_p50, '.2f')} | {_fmt(r.size_mb, '.2f')} | {_fmt(worst, '.1e')} | "
                     f"{r.status} |")
    return "\n".join(lines)


def write_report(path: Path, rows: list[GateRow], meta: dict) -> Path:
    """``export.json``: the settings in ``meta``, every row, and an overall ``status``."""
    status = "failed" if any(r.status != "ok" for r in rows) else "ok"
    doc = {**meta, "status": status, "rows": [{"export": r.label, **asdict(r)} for r in rows]}
    atomic_write_text(path, json.dumps(_clean(doc), indent=1) + "\n")
    return path


def _clean(obj):
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj
