"""``edgetrack calibrate``: fit a model's confidence calibration (what ``.confidence`` and ``.state`` of every
result come from) and store it in the model's spec.

    edgetrack calibrate default --shared ../shared          # the bundled default, in place
    edgetrack calibrate runs/student_onnx --dry-run         # $EDGETRACK_SHARED; print, write nothing

Fits on the dev split's train sequences and the video pool's train rows under ``SHARED/data`` (each also with
synthetic disappearances of the target: covered, noise frames, the camera elsewhere), reports absent-frame
detection on the held-out rows (dev val, pool val) before and after, and writes the calibration into every file
of the model that carries its spec (graphs untouched; an exported folder's accuracy gate stays valid).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..errors import DataError, InputError
from .common import plain_help

HELP = "fit a model's confidence calibration on real data and store it in the model's spec"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help=HELP, description=plain_help(__doc__))
    p.add_argument("model", metavar="MODEL", help="checkpoint, exported folder or bundled model name")
    p.add_argument("--shared", default=None,
                   help="data folder holding data/dev-sequences and data/train-videos (default: $EDGETRACK_SHARED)")
    p.add_argument("--backend", default="auto", help="runtime backend to collect with (default: auto)")
    p.add_argument("--cache", default="runs/calibrate",
                   help="folder for the per-sequence evidence, reused on a re-run (default: runs/calibrate; "
                        "'none' for no cache)")
    p.add_argument("--max-frames", type=int, default=None, help="use only the first N frames of each sequence")
    p.add_argument("--report", default=None, help="also write the full report (JSON) to this file")
    p.add_argument("--dry-run", action="store_true", help="fit and report; do not write the model")
    p.set_defaults(func=run)


def _shared(arg: str | None) -> Path:
    text = arg or os.environ.get("EDGETRACK_SHARED")
    if not text:
        raise InputError("no data to calibrate on: pass --shared DIR (a folder with data/dev-sequences and "
                         "data/train-videos) or set EDGETRACK_SHARED")
    path = Path(text).expanduser()
    if not (path / "data" / "dev-sequences").is_dir():
        raise DataError(f"{path} has no data/dev-sequences folder to calibrate on")
    return path


def _table(report: dict) -> str:
    lines = ["| held-out (recovery off) | frames | absent | absent flagged | precision | absent LOST | visible LOST | "
             "on-target LOST |", "|---|---|---|---|---|---|---|---|"]
    for when in ("held_out_before", "held_out"):
        for src, m in report[when].items():
            tag = "before" if when == "held_out_before" else "fitted"
            lines.append(f"| {tag} {src} | {m['frames']} | {m['absent']} | {m['absent_recall']:.3f} | "
                         f"{m['absent_precision']:.3f} | {m['absent_lost']:.3f} | {m['visible_lost']:.3f} | "
                         f"{m['on_target_lost']:.3f} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..data.fileio import atomic_write_text
    from ..evaluation.calibrate import calibrate_model
    from ..runtime.spec_files import write_calibration

    if args.max_frames is not None and args.max_frames < 2:
        raise InputError(f"--max-frames must be at least 2, got {args.max_frames}")
    shared = _shared(args.shared)
    cache = None if args.cache.lower() == "none" else Path(args.cache)
    cal, report = calibrate_model(args.model, shared, cache, args.backend, max_frames=args.max_frames)
    print(json.dumps(report["calibration"], indent=1))
    print(_table(report))
    if args.report:
        atomic_write_text(Path(args.report), json.dumps(report, indent=1, default=float) + "\n")
    if args.dry_run:
        print("dry run: the model was not changed")
        return 0
    written = write_calibration(args.model, cal.to_dict())
    print("calibration written to " + ", ".join(str(p) for p in written))
    return 0
