"""``edgetrack bench``: one-pass evaluation of edgetrack and OpenCV peers, with a report and plots.

    edgetrack bench                                   # default model on a generated synthetic set
    edgetrack bench path/to/DTB70 --peers kcf,nano --workers 2 --out runs/dtb70
    edgetrack bench path/to/clips --split val         # a folder of videos (+ box files, MANIFEST.tsv)
    edgetrack bench DTB70 --model default fast=runs/student/onnx --peers none   # models side by side

Exit status: 0 when every tracker ran on every sequence, 1 when a tracker could not be loaded or a sequence
failed (the others still run and are reported), 2 on bad arguments or data. Results under ``--out`` are reused
only when they were made by the same tracker (model hash, backend, device, threads, spec).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from edgetrack.cli.common import run_guarded
from edgetrack.data.readers import FORMATS
from edgetrack.errors import InputError

HELP = "evaluate trackers on a dataset (OPE, got10k metrics) and time them"
DEFAULT_OUT = "runs/bench"


def _csv(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(t.strip() for t in text.split(",") if t.strip())


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the bench arguments to ``parser``."""
    parser.add_argument("data", metavar="DATA", nargs="?", default=None,
                        help="dataset folder (default: generate a small synthetic set under OUT)")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="dataset layout (default: detect)")
    parser.add_argument("--split", default=None,
                        help="video folders with a MANIFEST.tsv: evaluate only the rows of this split (train, val)")
    parser.add_argument("--model", nargs="+", default=["default"], metavar="MODEL",
                        help="edgetrack models to run side by side: paths, bundled names, or name=path, "
                             "space- or comma-separated; "
                             "'default' = the bundled model, 'none' = peers only")
    parser.add_argument("--backend", default="auto", help="edgetrack runtime backend (default: auto)")
    parser.add_argument("--device", default="cpu", help="edgetrack device (cpu, cuda:N, gpu, npu)")
    parser.add_argument("--short-term", action="store_true",
                        help="edgetrack trackers without recovery while LOST (default: the long-term mode, as "
                             "Tracker() runs; see docs/states.md)")
    parser.add_argument("--allow-ungated", action="store_true",
                        help="run exported folders that have no passed accuracy gate (with a warning)")
    parser.add_argument("--peers", default="kcf",
                        help="comma-separated OpenCV trackers to compare: kcf,csrt,mil,nano,vit or 'none'")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes per tracker (0 = run in this process); each uses one thread")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--exclude-absent", action="store_true",
                        help="score only frames where the target is present (default: absent frames fail)")
    parser.add_argument("--attributes", default=None, help="folder of per-sequence attribute files <seq>.txt")
    parser.add_argument("--max-frames", type=int, default=None, help="use only the first N frames of each sequence")
    parser.add_argument("--sequences", default=None, help="comma-separated sequence names to evaluate")
    parser.add_argument("--max-seqs", type=int, default=None, help="evaluate only the first N sequences")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--json", action="store_true", help="print the overall numbers as JSON too")
    return parser


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``bench`` subcommand on an ``argparse`` subparsers object."""
    parser = subparsers.add_parser("bench", help=HELP, description=HELP)
    configure(parser)
    parser.set_defaults(func=run)
    return parser


def _model_factory(item: str, args):
    from edgetrack.evaluation.trackers import TrackerFactory

    name, sep, path = item.partition("=")
    if not sep:
        name, path = None, item
    if sep and (not name.strip() or not path.strip()):
        raise InputError(f"--model {item!r}: use a path, a bundled name, or name=path")
    return TrackerFactory("edgetrack", model=path.strip(), backend=args.backend, threads=1,
                          name=name.strip() if name else None, device=args.device,
                          allow_ungated=args.allow_ungated, long_term=not args.short_term)


def model_items(values: list[str]) -> list[str]:
    """``--model`` values, each a path, a name, ``name=path`` or a comma-separated list of those (as ``--peers``
    takes); an existing path with a comma in its name stays whole."""
    items = []
    for value in values:
        whole = Path(value.partition("=")[2] or value)
        items += [value] if "," in value and whole.exists() else [v.strip() for v in value.split(",") if v.strip()]
    return items


def _trackers(args) -> list:
    from edgetrack.evaluation.trackers import peer_factories

    models = [m for m in model_items(args.model) if m.lower() != "none"]
    trackers = [_model_factory(m, args) for m in models]
    labels = [t.label for t in trackers]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise InputError(f"--model gives two trackers the label {', '.join(twice)}; name them with name=path")
    return trackers + peer_factories(args.peers)


def summary(report: dict) -> dict:
    """Overall scalars per tracker (curves left out), for printing as JSON."""
    return {
        name: {k: v for k, v in entry["overall"].items() if not k.endswith("_curve")}
        for name, entry in report["trackers"].items()
    }


def _check_out(out: Path) -> None:
    """--out must be a folder, or a path where one can be made, in a place this process can write, checked
    before anything runs (nothing is created here)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder")
    parent = out.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"--out {out}: {parent} is a file, so the output folder cannot be made")
    try:  # os.access says yes to root everywhere: make and remove a probe folder instead
        os.rmdir(tempfile.mkdtemp(prefix=".edgetrack-probe-", dir=parent))
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write in {parent} ({exc.strerror or exc})") from exc


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by parsed ``args``; print the table; return an exit status."""
    return run_guarded(lambda: _run(args),
                       "interrupted: finished sequences are kept; run the same command again to resume")


def _run(args: argparse.Namespace) -> int:
    from edgetrack.evaluation.bench import BenchConfig, run_benchmark
    from edgetrack.evaluation.report import format_table

    if args.workers < 0:
        raise InputError(f"--workers must be 0 (run in this process) or a number of processes, got {args.workers}")
    _check_out(Path(args.out))
    trackers = _trackers(args)
    if not trackers:
        print("error: nothing to evaluate (--model none and no --peers)", file=sys.stderr)
        return 2
    config = BenchConfig(
        out=Path(args.out), trackers=tuple(trackers), data=Path(args.data) if args.data else None,
        format=args.format, split=args.split, attributes=Path(args.attributes) if args.attributes else None,
        sequences=_csv(args.sequences), max_sequences=args.max_seqs, max_frames=args.max_frames,
        workers=args.workers, exclude_absent=args.exclude_absent, plots=not args.no_plots,
    )
    result = run_benchmark(config)
    if args.json:
        print(json.dumps(summary(result.report), indent=2))
    print(format_table(result.report), end="")
    for key in ("markdown", "json", "success", "precision", "attributes"):
        if key in result.paths:
            print(f"{key}: {result.paths[key]}")
    failed = result.failed
    if failed:
        names = sorted({f"{o.tracker}" for o in failed})
        print(f"error: {len(failed)} tracker/sequence run(s) failed ({', '.join(names)}); see the messages "
              "above", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m edgetrack.cli.bench``."""
    parser = configure(argparse.ArgumentParser(prog="edgetrack bench", description=HELP))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
