"""``edgetrack tune``: choose a model's decoding constants (window influence, scale/ratio penalty, size smoothing,
the motion prior) on tracking data and store them in the model's spec.

    edgetrack tune default --shared ../shared --dry-run       # dev train split + pool train rows; check on val
    edgetrack tune runs/student_onnx --data my_clips/ --check my_other_clips/

Every combination of ``--window``, ``--penalty-k`` and ``--lr`` is tracked (recovery off: plain short-term
tracking) on the tuning sequences, the best mean AUC is chosen, and it is checked against the model's own
constants on sequences that share no video with them. Tune on training data, never on what you will report.
Re-run ``edgetrack calibrate`` afterwards: the confidence calibration was fitted with the old constants.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import DataError, InputError
from .common import plain_help

HELP = "choose a model's decoding constants on tracking data and store them in its spec"


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help=HELP, description=plain_help(__doc__))
    p.add_argument("model", metavar="MODEL", help="checkpoint, exported folder or bundled model name")
    p.add_argument("--shared", default=None, help="tune on SHARED/data's dev train split and pool train rows and "
                                                  "check on their val rows (default: $EDGETRACK_SHARED)")
    p.add_argument("--data", nargs="+", default=None, help="dataset folders to tune on instead (ground truth needed)")
    p.add_argument("--check", nargs="*", default=(), help="dataset folders to check the choice on (with --data)")
    p.add_argument("--window", type=_floats, default=(0.35, 0.42, 0.49, 0.56), help="window_influence values")
    p.add_argument("--penalty-k", type=_floats, default=(0.05, 0.1, 0.15, 0.22), help="penalty_k values")
    p.add_argument("--lr", type=_floats, default=(0.25, 0.385, 0.5), help="lr (size smoothing) values")
    p.add_argument("--motion-gain", type=_floats, default=(0.0,),
                   help="motion_gain values: how far ahead of the target, in updates of its velocity, the search "
                        "is centred (default 0: around its last position, as pysot)")
    p.add_argument("--motion-smooth", type=_floats, default=(0.0,), help="motion_smooth values (velocity averaging)")
    p.add_argument("--backend", default="auto", help="runtime backend (default: auto)")
    p.add_argument("--report", default=None, help="also write the full report (JSON) to this file")
    p.add_argument("--dry-run", action="store_true", help="tune and report; do not write the model")
    p.set_defaults(func=run)


def _scored(folders) -> list:
    from ..data import open_dataset
    from ..evaluation.bench import drop_unscorable

    seqs = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise DataError(f"not a dataset folder: {folder}")
        seqs += list(drop_unscorable(open_dataset(folder))[0])
    return seqs


def sides(args: argparse.Namespace) -> tuple[list, list]:
    """(tuning sequences, check sequences) from ``--data``/``--check`` or from the shared data's split."""
    if args.data:
        return _scored(args.data), _scored(args.check)
    text = args.shared or os.environ.get("EDGETRACK_SHARED")
    if not text:
        raise InputError("no data to tune on: pass --data DIR... or --shared DIR (or set EDGETRACK_SHARED)")
    from ..evaluation.disappear import fit_and_eval_sets

    parts = fit_and_eval_sets(Path(text).expanduser())
    return list(parts["fit"].real), list(parts["eval"].real)


def _table(report: dict) -> str:
    t, c = report["tune_side"], report["check_side"]
    lines = ["| constants | tuning side AUC | check side AUC |", "|---|---|---|"]
    for tag, key in (("own", "own"), ("chosen", "chosen")):
        lines.append(f"| {tag} {json.dumps(report[key])} | {t[key + '_auc']:.3f} | {c[key + '_auc']:.3f} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..data.fileio import atomic_write_text
    from ..evaluation.calibrate import tracker_factory
    from ..evaluation.tuning import DecodingGrid, tune
    from ..runtime.spec_files import write_spec

    grid = DecodingGrid(args.window, args.penalty_k, args.lr, args.motion_gain, args.motion_smooth)
    tune_seqs, check_seqs = sides(args)
    if not tune_seqs:
        raise DataError("no sequence with full ground truth to tune on")
    report = tune(tracker_factory(args.model, args.backend), tune_seqs, check_seqs, grid,
                  progress=lambda name: print(f"tracked {name}", file=sys.stderr, flush=True))
    print(json.dumps(report, indent=1))
    print(_table(report))
    if args.report:
        atomic_write_text(Path(args.report), json.dumps(report, indent=1) + "\n")
    if args.dry_run:
        print("dry run: the model was not changed")
        return 0
    written = write_spec(args.model, **report["chosen"])
    print("constants written to " + ", ".join(str(p) for p in written))
    print("re-run `edgetrack calibrate` on the model: its confidence calibration was fitted with the old constants")
    return 0
