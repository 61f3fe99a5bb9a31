"""``edgetrack``: track, demo, bench, import, models, calibrate, tune."""
from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import bench, calibrate, demo, import_cmd, models, track, tune
from .common import run_guarded


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgetrack", description="Single-object tracking for small machines.")
    parser.add_argument("--version", action="version", version=f"edgetrack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    track.add_parser(sub)
    demo.add_parser(sub)
    bench.add_parser(sub)
    import_cmd.add_parser(sub)
    models.add_parser(sub)
    calibrate.add_parser(sub)
    tune.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    return run_guarded(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
