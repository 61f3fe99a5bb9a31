"""``edgetrack-export [MODEL] [--format auto|onnx|openvino|tensorrt|all] [--fp16 | --int8] [--data DIR...] ...``:
turn a checkpoint into deployable folders, each checked by the accuracy gate.

The flags are checked against the table of formats (:data:`edgetrack.export.formats.FORMATS`); every export
writes a folder ``Tracker(folder)`` loads, and ``export.json`` with the gate's table. Exit status: 0 when every
export passed the gate, 1 when one failed it (its files are kept and marked ``failed``; ``Tracker`` loads them
only with ``allow_ungated=True``), 2 on bad input. A re-export replaces the previous one only once it is complete.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..cli.common import run_guarded
from .formats import DEFAULT_MAX_DROP, FORMAT_CHOICES, FORMATS, MIN_CALIB_PAIRS, OPSETS, ExportArgs, ExportFormat

__all__ = ["FORMATS", "ExportFormat", "build_parser", "main", "run"]


def _in_range(kind: type, low: float, high: float):
    """An argparse type: a ``kind`` number between ``low`` and ``high`` (argparse names the flag on error)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number from {low:g} to {high:g}, got {text!r}") from None
        if not low <= value <= high:  # NaN fails too
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g}, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgetrack-export", description="Export a tracker to deployable files.")
    p.add_argument("model", nargs="?", default="default",
                   help="edgetrack checkpoint (.safetensors), or 'default' for the bundled default student")
    p.add_argument("--format", default="auto", choices=FORMAT_CHOICES,
                   help="auto: TensorRT with a GPU, else OpenVINO when installed, else ONNX; all: every format "
                        "this machine can write, one <format>-<precision> subfolder each")
    p.add_argument("--fp16", action="store_true", help="half-precision weights (OpenVINO, TensorRT)")
    p.add_argument("--int8", action="store_true", help="8-bit quantization calibrated on --data")
    p.add_argument("--data", nargs="+", default=[], metavar="DIR",
                   help="calibration data: dataset folders (DTB70/OTB/UAV123/GOT-10k/LaSOT layouts) or videos")
    p.add_argument("--calib-pairs", type=int, default=MIN_CALIB_PAIRS, help="template/search pairs to calibrate on")
    p.add_argument("--max-drop", type=_in_range(float, 0.0, 1.0), default=None,
                   help=f"largest success-AUC drop vs the FP32 ONNX export the gate accepts, from 0 to 1 (default "
                        f"{DEFAULT_MAX_DROP}); given explicitly, OpenVINO INT8 uses NNCF's accuracy control")
    p.add_argument("--val-data", default=None, metavar="DIR",
                   help="sequences the gate tracks (default: the --data datasets, else the dev split's "
                        "validation sequences under $EDGETRACK_SHARED when that is set, else generated ones)")
    p.add_argument("--val-frames", type=int, default=None, help="track at most this many frames per sequence")
    p.add_argument("--workspace", type=float, default=2.0, help="TensorRT builder workspace in GB")
    p.add_argument("--device", type=int, default=0, help="CUDA device index for TensorRT")
    p.add_argument("--dla", type=int, default=None, help="Jetson DLA core for TensorRT engines")
    p.add_argument("--opset", type=_in_range(int, *OPSETS), default=17,
                   help=f"ONNX opset, {OPSETS[0]} to {OPSETS[1]} (default 17; TensorRT 8.x takes up to 17)")
    p.add_argument("--out", default=None, help="output folder (default: <model>_<format>[_<precision>])")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration pairs")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    p.add_argument("--static-batch", action="store_true", help="fix the batch axis to 1")
    p.add_argument("--search-size", type=int, default=None, metavar="PX",
                   help="search crop side to track with (default: the model's; a multiple of the stride away "
                        "from it: e.g. 239 for a 255 model, about 12%% faster, sees less around the target)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def to_export_args(args: argparse.Namespace) -> ExportArgs:
    return ExportArgs(model=args.model, format=args.format, fp16=args.fp16, int8=args.int8, data=tuple(args.data),
                      calib_pairs=args.calib_pairs, max_drop=args.max_drop, val_data=args.val_data,
                      val_frames=args.val_frames, workspace=args.workspace, device=args.device, dla=args.dla,
                      opset=args.opset, out=args.out, simplify=not args.no_simplify,
                      dynamic_batch=not args.static_batch, seed=args.seed, search_size=args.search_size)


def _print_result(result) -> None:
    from .gate import format_table

    for row in result.rows:
        for name, diff in row.parity.items():
            print(f"  parity vs torch ({row.label}): {name} max |diff| / scale = {diff:.2e}")
    print(f"validation: {result.validation}")
    print(format_table(list(result.rows), result.reference))
    for row in result.rows:
        print(f"{row.label}: {row.status}{' - ' + row.message if row.message else ''} -> {row.folder}")
    print(f"wrote {result.out / 'export.json'}")


def run(args: argparse.Namespace) -> int:
    from .formats import detect_platform, validate_request
    from .pipeline import run_export

    request = validate_request(to_export_args(args), detect_platform())
    for note in request.notes:
        print(note, file=sys.stderr if note.startswith("warning") else sys.stdout)
    shared = os.environ.get("EDGETRACK_SHARED")
    result = run_export(request, progress=not args.no_progress, shared=Path(shared) if shared else None)
    _print_result(result)
    if result.failed:
        names = ", ".join(f"{r.label} ({r.message})" for r in result.failed)
        print(f"error: the export gate failed for {names}; the files are kept and marked 'failed' in "
              f"{result.out / 'export.json'}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
