"""Evaluation and benchmarking: OPE runs, got10k-exact metrics, reports and plots.

Typical use::

    from edgetrack.data import open_dataset
    from edgetrack.evaluation import TrackerFactory, run_ope, build_report, write_report

    ds = open_dataset("path/to/DTB70")
    trackers = [TrackerFactory("edgetrack"), TrackerFactory("kcf")]
    run_ope(ds, trackers, "out/results", workers=2)          # resumable, got10k layout
    report = build_report(ds, "out/results", [t.label for t in trackers])
    write_report(report, "out")                               # report.json, report.md, *.png
"""
from .bench import BenchConfig, BenchResult, SyntheticSpec, run_benchmark
from .metrics import (
    Curves,
    EvalOptions,
    center_error,
    iou,
    mean_curves,
    normalized_center_error,
    score_sequence,
)
from .report import build_report, evaluate_tracker, format_table, write_report
from .results import SequenceRecord, read_meta, read_result_boxes, write_record
from .runner import Outcome, run_ope, run_task, track_sequence
from .trackers import PEERS, OpenCVTracker, Prediction, TrackerFactory, peer_factories, read_prediction

__all__ = [
    "PEERS", "BenchConfig", "BenchResult", "Curves", "EvalOptions", "OpenCVTracker", "Outcome", "Prediction",
    "SequenceRecord", "SyntheticSpec", "TrackerFactory", "build_report", "center_error", "evaluate_tracker",
    "format_table", "iou", "mean_curves", "normalized_center_error", "peer_factories", "read_meta",
    "read_prediction", "read_result_boxes", "run_benchmark", "run_ope", "run_task", "score_sequence",
    "track_sequence", "write_record", "write_report",
]
