"""Scores and timings from result files: ``report.json``, ``report.md`` and the plots."""
from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgetrack.data.attributes import ATTRIBUTE_LABELS
from edgetrack.data.fileio import atomic_write_text
from edgetrack.data.sequence import Dataset

from .metrics import Curves, EvalOptions, attribute_curves, mean_curves, score_sequence
from .results import is_complete, read_meta, read_result_boxes, read_times

SCORE_KEYS = ("success_auc", "precision_20", "norm_precision", "success_rate_50")


def _clean(obj):
    """``obj`` with every non-finite float replaced by None, so the JSON stays standard."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _pct(values: list[float], q: float) -> float | None:
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], float)
    return float(np.percentile(arr, q)) if arr.size else None


def got10k_speed(times: np.ndarray | None) -> float:
    """got10k's per-sequence speed: mean of 1/t over frames with t > 0 (0 when unknown)."""
    if times is None:
        return 0.0
    times = times[times > 0]
    return float(np.mean(1.0 / times)) if len(times) else 0.0


def _curves_entry(curves: Curves, with_curves: bool = True) -> dict:
    entry = {k: float(v) for k, v in curves.scores().items()}
    entry["n_frames"] = curves.n_frames
    if with_curves:
        entry["success_curve"] = curves.success.tolist()
        entry["precision_curve"] = curves.precision.tolist()
        entry["norm_precision_curve"] = curves.norm_precision.tolist()
    return entry


def _timing(metas: list[dict]) -> dict:
    update = [v for m in metas for v in m.get("update_ms", []) if v is not None]
    decode = [v for m in metas for v in m.get("decode_ms", []) if v is not None]
    p50 = _pct(update, 50)
    rss = [m["peak_rss_mb"] for m in metas if m.get("peak_rss_mb") is not None]
    before = [m["rss_before_mb"] for m in metas if m.get("rss_before_mb") is not None]
    sizes = [m["model_size_mb"] for m in metas if m.get("model_size_mb") is not None]
    return {
        "update_ms_p50": p50,
        "update_ms_p90": _pct(update, 90),
        "update_ms_p99": _pct(update, 99),
        "update_ms_mean": float(np.mean(update)) if update else None,
        "init_ms_p50": _pct([m.get("init_ms") for m in metas], 50),
        "load_ms_p50": _pct([m.get("load_ms") for m in metas], 50),
        "decode_ms_p50": _pct(decode, 50),
        "fps": 1000.0 / p50 if p50 else None,
        "peak_rss_mb": max(rss) if rss else None,
        "rss_baseline_mb": min(before) if before else None,
        "rss_scope": metas[0].get("rss_scope") if metas else None,
        "model_size_mb": sizes[0] if sizes else None,
    }


def _sequence_entry(curves: Curves | None, meta: dict | None, speed: float) -> dict:
    entry = _curves_entry(curves) if curves is not None else {"n_frames": 0, "unscored": True}
    if meta is not None:
        skip = ("peak_rss_mb", "rss_baseline_mb", "rss_scope")
        entry.update({k: v for k, v in _timing([meta]).items() if k not in skip})
    entry["speed_fps_got10k"] = speed if speed > 0 else None
    return entry


def evaluate_tracker(
    dataset: Dataset, result_dir: str | os.PathLike, tracker: str, options: EvalOptions | None = None
) -> dict:
    """Scores, timings and per-sequence / per-attribute entries of one tracker's results on ``dataset``."""
    options = options or EvalOptions()
    per_seq: dict[str, Curves] = {}
    sequences, metas, speeds, missing = {}, [], [], []
    for seq in dataset:
        if not is_complete(result_dir, tracker, seq.name, len(seq)):
            missing.append(seq.name)
            continue
        boxes = read_result_boxes(result_dir, tracker, seq.name, len(seq))
        # withheld ground truth (GOT-10k test) cannot be scored here
        curves = score_sequence(boxes, seq.gt, seq.absent, options) if seq.gt_complete else None
        meta = read_meta(result_dir, tracker, seq.name)
        speed = got10k_speed(read_times(result_dir, tracker, seq.name))
        speeds.append(speed)
        if curves is not None:
            per_seq[seq.name] = curves
        if meta is not None:
            metas.append(meta)
        sequences[seq.name] = _sequence_entry(curves, meta, speed)
    overall = mean_curves(list(per_seq.values()))
    entry = {"overall": _curves_entry(overall) if overall is not None else {k: None for k in SCORE_KEYS}}
    entry["overall"].update(_timing(metas))
    nonzero = [s for s in speeds if s > 0]
    entry["overall"]["speed_fps_got10k"] = float(np.sum(nonzero) / len(nonzero)) if nonzero else None
    entry["overall"]["n_sequences"] = len(per_seq)
    entry["sequences"] = sequences
    attrs = {s.name: s.attributes for s in dataset}
    entry["attributes"] = {
        code: {**_curves_entry(c, with_curves=False), "n_sequences": k,
               "label": ATTRIBUTE_LABELS.get(code, code)}
        for code, (c, k) in attribute_curves(per_seq, attrs, dataset.attribute_names).items()
    }
    entry["missing"] = missing
    entry["complete"] = not missing
    return entry


def build_report(
    dataset: Dataset,
    result_dir: str | os.PathLike,
    trackers: list[str],
    options: EvalOptions | None = None,
    errors: dict[str, dict[str, str]] | None = None,
) -> dict:
    """The whole report: dataset, protocol and one entry per tracker (see ``docs/evaluation.md``)."""
    options = options or EvalOptions()
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": {
            "name": dataset.name, "format": dataset.format, "root": dataset.root,
            "n_sequences": len(dataset), "n_frames": dataset.n_frames,
            "attributes": list(dataset.attribute_names),
        },
        "protocol": {**asdict(options), "first_frame": "replaced by ground truth",
                     "absent_frames": "excluded" if options.exclude_absent else "count as failures"},
        "result_dir": str(result_dir),
        "trackers": {},
    }
    for name in trackers:
        entry = evaluate_tracker(dataset, result_dir, name, options)
        if errors and errors.get(name):
            entry["errors"] = dict(errors[name])
        report["trackers"][name] = entry
    return report


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(report: dict) -> str:
    """A markdown table of the overall numbers, one row per tracker, best AUC first."""
    head = ("| tracker | AUC | P@20 | norm P | SR@0.5 | update ms p50 / p90 / p99 | init ms | decode ms "
            "| FPS | peak RSS MB | model MB | seqs |")
    lines = [head, "|" + "---|" * 12]
    rows = sorted(report["trackers"].items(), key=lambda kv: -(kv[1]["overall"].get("success_auc") or -1))
    for name, entry in rows:
        o = entry["overall"]
        lines.append(
            f"| {name} | {_fmt(o.get('success_auc'))} | {_fmt(o.get('precision_20'))} | "
            f"{_fmt(o.get('norm_precision'))} | {_fmt(o.get('success_rate_50'))} | "
            f"{_fmt(o.get('update_ms_p50'), 2)} / {_fmt(o.get('update_ms_p90'), 2)} / "
            f"{_fmt(o.get('update_ms_p99'), 2)} | {_fmt(o.get('init_ms_p50'), 2)} | "
            f"{_fmt(o.get('decode_ms_p50'), 2)} | {_fmt(o.get('fps'), 1)} | {_fmt(o.get('peak_rss_mb'), 0)} | "
            f"{_fmt(o.get('model_size_mb'), 2)} | {o.get('n_sequences', 0)}"
            f"{'' if entry.get('complete', True) else '*'} |"
        )
    return "\n".join(lines) + "\n"


def _markdown(report: dict) -> str:
    ds, proto = report["dataset"], report["protocol"]
    parts = [
        f"# Tracking benchmark: {ds['name']}\n",
        f"{ds['n_sequences']} sequences, {ds['n_frames']} frames ({ds['format']} layout). One-pass evaluation, "
        f"got10k metrics; absent-target frames {proto['absent_frames']}. Latencies are medians/percentiles "
        "of the `update` call alone (frame decoding excluded), one compute thread per tracker.\n",
        format_table(report),
    ]
    if any(not e.get("complete", True) for e in report["trackers"].values()):
        parts.append("\\* results missing for some sequences (see `missing` in report.json).\n")
    codes = ds.get("attributes") or []
    if codes and any(e["attributes"] for e in report["trackers"].values()):
        parts.append("\n## Success AUC per attribute\n")
        parts.append("| tracker | " + " | ".join(codes) + " |\n|" + "---|" * (len(codes) + 1))
        for name, e in report["trackers"].items():
            cells = [_fmt(e["attributes"].get(c, {}).get("success_auc")) for c in codes]
            parts.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(parts) + "\n"


def write_report(report: dict, out_dir: str | os.PathLike, plots: bool = True) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and (with ``plots``) ``success.png``, ``precision.png`` and,
    when the dataset has attributes, ``attributes.png`` into ``out_dir``; return the paths written."""
    out = Path(out_dir)
    paths = {
        "json": atomic_write_text(out / "report.json", json.dumps(_clean(report), indent=2, allow_nan=False) + "\n"),
        "markdown": atomic_write_text(out / "report.md", _markdown(report)),
    }
    if plots and report["trackers"]:
        from .plots import missing_matplotlib, plot_attributes, plot_precision, plot_success

        why = missing_matplotlib()
        if why:
            print(why, file=sys.stderr)
            return paths
        paths["success"] = plot_success(report, out / "success.png")
        paths["precision"] = plot_precision(report, out / "precision.png")
        if report["dataset"].get("attributes"):
            paths["attributes"] = plot_attributes(report, out / "attributes.png")
    return paths


def publish(report: dict, table: str, out, stem: str, plot=None) -> None:
    """What a benchmark script ends with: the report as JSON and its markdown table on stdout, both written
    atomically to ``out/<stem>.json`` and ``.md``, and ``plot(report, path)`` drawn to ``out/<stem>.png``."""
    import json
    import sys
    from pathlib import Path

    from ..data.fileio import atomic_write_text

    text, out = json.dumps(report, indent=1), Path(out)
    print(text)
    print(table)
    atomic_write_text(out / f"{stem}.json", text + "\n")
    atomic_write_text(out / f"{stem}.md", table + "\n")
    if plot is not None:
        plot(report, out / f"{stem}.png")
        print(f"plot: {out / (stem + '.png')}", file=sys.stderr)
