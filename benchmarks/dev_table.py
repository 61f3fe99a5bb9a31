"""The dev-set table: edgetrack models next to OpenCV's trackers on ../shared/data/dev-sequences.

    python benchmarks/dev_table.py --peers kcf,csrt,nano,vit --workers 1
    python benchmarks/dev_table.py --models v1=nt_v1.safetensors,v2=nt_v2.safetensors,v3=nt_v3.safetensors

Every tracker runs with one compute thread; latencies are medians of the ``update`` call alone. Results are
kept under ``--out`` and reused, so an interrupted run resumes. Prints the overall numbers as JSON and a
markdown table, and writes report.json, report.md, success.png and precision.png into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from edgetrack.cli.bench import summary
from edgetrack.errors import EdgeTrackError
from edgetrack.evaluation.bench import BenchConfig, model_specs, run_benchmark
from edgetrack.evaluation.report import format_table
from edgetrack.evaluation.trackers import TrackerFactory, peer_factories, shared_dir

REPO = Path(__file__).resolve().parents[1]




def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(shared_dir() / "data" / "dev-sequences"), help="dataset folder")
    p.add_argument("--models", default="", help="edgetrack models as name=path,name=path")
    p.add_argument("--backend", default="auto", help="edgetrack runtime backend")
    p.add_argument("--peers", default="kcf,csrt,nano,vit", help="OpenCV trackers (kcf,csrt,mil,nano,vit or none)")
    p.add_argument("--workers", type=int, default=1, help="worker processes per tracker (0 = in process)")
    p.add_argument("--out", default=str(REPO / "runs" / "dev_table"), help="output folder (results are reused)")
    p.add_argument("--sequences", default=None, help="comma-separated sequence names")
    p.add_argument("--max-seqs", type=int, default=None, help="only the first N sequences")
    p.add_argument("--max-frames", type=int, default=None, help="only the first N frames of each sequence")
    p.add_argument("--exclude-absent", action="store_true", help="do not score absent-target frames")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("EDGETRACK_SHARED", str(shared_dir()))  # where the nano/vit peers' weights are
    if not Path(args.data).is_dir():
        print(f"dev sequences not found at {args.data} (set EDGETRACK_SHARED or --data)", file=sys.stderr)
        return 2
    try:
        trackers = [TrackerFactory("edgetrack", model=path, backend=args.backend, name=name, threads=1)
                    for name, path in model_specs(args.models)]
        trackers += peer_factories(args.peers)
        config = BenchConfig(
            out=Path(args.out), trackers=tuple(trackers), data=Path(args.data), format="folder",
            sequences=tuple(s.strip() for s in args.sequences.split(",")) if args.sequences else None,
            max_sequences=args.max_seqs, max_frames=args.max_frames, workers=args.workers,
            exclude_absent=args.exclude_absent,
        )
        result = run_benchmark(config)
    except EdgeTrackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary(result.report), indent=2))
    print(format_table(result.report), end="")
    print(f"report: {result.paths['markdown']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
