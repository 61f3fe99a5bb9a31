"""Result files in got10k's layout, plus a timing/memory sidecar per sequence.

``<out>/<tracker>/<seq>.txt``               one ``x,y,w,h`` line per frame (comma-separated)
``<out>/<tracker>/times/<seq>_time.txt``    seconds per frame: frame 0 = ``init``, then each ``update``
                                            (decode excluded)
``<out>/<tracker>/meta/<seq>.json``         per-frame update/decode ms, scores, init/load ms, peak RSS,
                                            model size

Every file is written atomically and the box file last, so a sequence whose box file holds one line
per frame is complete; anything else is re-run.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgetrack.data.fileio import atomic_write_text
from edgetrack.data.gtfile import format_boxes, read_boxes
from edgetrack.errors import DataError


@dataclass(frozen=True)
class SequenceRecord:
    """What one tracker produced on one sequence."""

    boxes: np.ndarray  # (N, 4)
    update_ms: np.ndarray  # (N,), frame 0 is NaN (init frame)
    decode_ms: np.ndarray  # (N,)
    scores: np.ndarray  # (N,), NaN where the tracker gives none
    init_ms: float
    load_ms: float = math.nan
    info: dict = field(default_factory=dict)  # peak_rss_mb, model_size_mb, rss_scope, ...


def box_path(out_dir: str | os.PathLike, tracker: str, seq: str) -> Path:
    return Path(out_dir) / tracker / f"{seq}.txt"


def time_path(out_dir: str | os.PathLike, tracker: str, seq: str) -> Path:
    return Path(out_dir) / tracker / "times" / f"{seq}_time.txt"


def meta_path(out_dir: str | os.PathLike, tracker: str, seq: str) -> Path:
    return Path(out_dir) / tracker / "meta" / f"{seq}.json"


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def is_complete(out_dir: str | os.PathLike, tracker: str, seq: str, n_frames: int) -> bool:
    """True when the box file exists and holds exactly ``n_frames`` lines."""
    path = box_path(out_dir, tracker, seq)
    return path.is_file() and _count_lines(path) == n_frames


def _nan_to_none(values) -> list:
    return [None if (v is None or (isinstance(v, float) and math.isnan(v))) else v for v in values]


def write_record(out_dir: str | os.PathLike, tracker: str, seq: str, record: SequenceRecord) -> Path:
    """Write one sequence's files (times, meta, then boxes) atomically; return the box file."""
    n = len(record.boxes)
    seconds = np.concatenate([[record.init_ms], np.asarray(record.update_ms, float)[1:]]) / 1000.0
    atomic_write_text(time_path(out_dir, tracker, seq), "".join(f"{s:.8f}\n" for s in seconds))
    meta = {
        "tracker": tracker,
        "sequence": seq,
        "n_frames": n,
        "init_ms": record.init_ms,
        "load_ms": None if math.isnan(record.load_ms) else record.load_ms,
        "update_ms": _nan_to_none([float(v) for v in np.asarray(record.update_ms)[1:]]),
        "decode_ms": _nan_to_none([float(v) for v in record.decode_ms]),
        "scores": _nan_to_none([float(v) for v in record.scores]),
        **record.info,
    }
    atomic_write_text(meta_path(out_dir, tracker, seq), json.dumps(meta) + "\n")
    return atomic_write_text(box_path(out_dir, tracker, seq), format_boxes(record.boxes, "%.4f"))


def read_result_boxes(out_dir: str | os.PathLike, tracker: str, seq: str, n_frames: int) -> np.ndarray:
    """A sequence's predicted boxes; :class:`DataError` when missing or of the wrong length."""
    path = box_path(out_dir, tracker, seq)
    boxes = read_boxes(path)
    if len(boxes) != n_frames:
        raise DataError(f"{path}: {len(boxes)} boxes for a sequence of {n_frames} frames")
    return boxes


def read_meta(out_dir: str | os.PathLike, tracker: str, seq: str) -> dict | None:
    """The timing/memory sidecar of a sequence, or None (e.g. for results written by another toolkit)."""
    path = meta_path(out_dir, tracker, seq)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None


def read_times(out_dir: str | os.PathLike, tracker: str, seq: str) -> np.ndarray | None:
    """Per-frame seconds from the got10k-style time file, or None when absent."""
    path = time_path(out_dir, tracker, seq)
    if not path.is_file():
        return None
    return np.array([float(v) for v in path.read_text().split()], dtype=np.float64)
