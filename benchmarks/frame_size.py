"""Per-update cost against frame size: edgetrack models and OpenCV's TrackerNano on the same frames.

    python benchmarks/frame_size.py
    python benchmarks/frame_size.py --models v2=nt_v2.safetensors --frames 120 --json runs/frame_size.json

Real dev sequences (../shared/data/dev-sequences) run at their native size (long side <= 640 px) and upscaled
to fit 1280x720 (frames resized and boxes scaled before any timing). Every tracker uses one thread
(``cv2.setNumThreads(1)``, ONNX Runtime intra-op 1). Two schedules, both on the same decoded frames:

- ``alone`` (the figure to quote): each tracker runs whole sequences by itself, one tracker after the other, as
  one tracker runs on a device;
- ``interleaved``: the trackers take turns every ``--block`` frames (1: frame by frame), which charges small
  models for the caches the others evict (the same default measured 0.24x TrackerNano alone, 0.34x frame by
  frame on one machine).

The numbers are medians of the ``update`` call alone; the CPU model and its vector extensions are printed with
them, since ratios to TrackerNano move with the CPU. edgetrack rows also split the update into crop,
uint8->float conversion, network and the rest (decoding, state, bookkeeping). Prints JSON and a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import edgetrack.runtime.target as target_module
from edgetrack import Tracker
from edgetrack.data.gtfile import read_boxes
from edgetrack.errors import EdgeTrackError
from edgetrack.evaluation.trackers import TrackerFactory, shared_dir

SEQUENCES = "uav123_10fps_car10,otb_Bird2,vot_bag"
PARTS = ("crop", "prep", "network")
_current: dict[str, list[float]] = {}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(shared_dir() / "data" / "dev-sequences"), help="dev-sequences folder")
    p.add_argument("--sequences", default=SEQUENCES, help="comma-separated sequence names")
    p.add_argument("--frames", type=int, default=0,
                   help="frames per sequence, the first being the init frame (0: whole sequences)")
    p.add_argument("--big", default="1280x720", help="upscaled size the frames are fitted into (WxH)")
    p.add_argument("--models", default="", help="extra edgetrack models as name=path,name=path")
    p.add_argument("--no-nano", action="store_true", help="leave out OpenCV's TrackerNano")
    p.add_argument("--schedule", choices=("both", "alone", "interleaved"), default="both")
    p.add_argument("--block", type=int, default=1,
                   help="interleaved schedule: consecutive frames each tracker runs before the next takes over")
    p.add_argument("--json", default=None, help="also write the JSON report here")
    return p.parse_args(argv)


def _timed(func, key: str):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = func(*args, **kwargs)
        _current.setdefault(key, []).append((time.perf_counter() - start) * 1000.0)
        return out
    return wrapper


def _edgetrack(model: str | None) -> Tracker:
    # graphs exported straight from checkpoints for comparison carry no gate report
    tracker = Tracker(model, threads=1, allow_ungated=True)
    tracker._session.prep = _timed(tracker._session.prep, "prep")
    tracker.backend.run_search = _timed(tracker.backend.run_search, "network")
    return tracker


def build_trackers(args: argparse.Namespace) -> list[tuple[str, object, bool]]:
    """(label, fresh tracker, is edgetrack) for every compared tracker."""
    out: list[tuple[str, object, bool]] = [("edgetrack-default", _edgetrack(None), True)]
    for item in filter(None, (s.strip() for s in args.models.split(","))):
        name, _, path = item.rpartition("=")
        out.append((f"edgetrack-{name or Path(path).stem}", _edgetrack(path), True))
    if not args.no_nano:
        out.append(("opencv-nano", TrackerFactory("nano").build(), False))
    return out


def load_sequence(folder: Path, n: int, big: tuple[int, int]) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    """{"native": (frames, first box), "big": (upscaled frames, scaled first box)}."""
    files = sorted((folder / "img").glob("*.jpg"))[:n or None]
    frames = [cv2.imread(str(f)) for f in files]
    box = read_boxes(folder / "groundtruth_rect.txt")[0]
    h, w = frames[0].shape[:2]
    s = min(big[0] / w, big[1] / h)
    size = (round(w * s), round(h * s))
    sx, sy = size[0] / w, size[1] / h
    upscaled = [cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames]
    return {"native": (frames, box), "big": (upscaled, box * np.array([sx, sy, sx, sy]))}


def run_sequence(args, clips, samples, schedule: str) -> None:
    """Init every tracker at every size, then time its updates. ``alone``: each tracker through the whole
    sequence, one after the other. ``interleaved``: blocks of ``--block`` frames per tracker, the order rotated
    every block (the first update of a block, after the others evicted the caches, is one sample of
    ``--block``)."""
    jobs = []
    for size, (frames, box) in clips.items():
        for label, tracker, is_et in build_trackers(args):
            tracker.init(frames[0], box)
            jobs.append((label, size, tracker, is_et, frames))
    n = min(len(c[0]) for c in clips.values())
    if schedule == "alone":
        for job in jobs:
            for i in range(1, n):
                _time_update(job, i, samples, schedule)
        return
    for b, first in enumerate(range(1, n, args.block)):
        k = b % len(jobs)
        for job in jobs[k:] + jobs[:k]:
            for i in range(first, min(first + args.block, n)):
                _time_update(job, i, samples, schedule)


def _time_update(job, i: int, samples, schedule: str) -> None:
    label, size, tracker, is_et, frames = job
    samples = samples.setdefault(schedule, {})
    _current.clear()
    start = time.perf_counter()
    tracker.update(frames[i])
    total = (time.perf_counter() - start) * 1000.0
    rec = samples.setdefault(label, {}).setdefault(size, {"update": [], **{p: [] for p in PARTS}})
    rec["update"].append(total)
    if is_et:
        for part in PARTS:
            rec[part].append(sum(_current.get(part, [0.0])))


def summarise(samples: dict) -> dict:
    report: dict = {}
    nano = samples.get("opencv-nano", {})
    for label, sizes in samples.items():
        for size, rec in sizes.items():
            row = {"update_ms": float(np.median(rec["update"])), "n": len(rec["update"])}
            if nano.get(size):
                row["ratio_to_nano"] = row["update_ms"] / float(np.median(nano[size]["update"]))
            if rec["crop"]:
                parts = {p: np.asarray(rec[p]) for p in PARTS}
                rest = np.asarray(rec["update"]) - sum(parts.values())
                row.update({f"{p}_ms": float(np.median(v)) for p, v in parts.items()})
                row["decode_ms"] = float(np.median(rest))
            report.setdefault(label, {})[size] = row
    return report


def cpu_description() -> dict[str, str]:
    """The CPU model and its vector extensions that matter to these kernels (Linux ``/proc/cpuinfo``)."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8",
              "asimd", "asimddp", "neon")
    return {"model": model, "vector_extensions": " ".join(f for f in wanted if f in flags),
            "cores": str(os.cpu_count())}


def table(report: dict, sizes: dict[str, str], cpu: dict[str, str]) -> str:
    keys = ("ratio_to_nano", "crop_ms", "prep_ms", "network_ms", "decode_ms")
    lines = [f"CPU: {cpu['model']} ({cpu['vector_extensions']}), one thread", "",
             "| schedule | model | frames | update ms | x Nano | crop ms | to-float ms | network ms | decode+rest ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for schedule, models in report.items():
        for label, rows in models.items():
            for size, row in rows.items():
                cells = [f"{row[k]:.2f}" if k == "ratio_to_nano" else f"{row[k]:.3f}" if k in row else "-"
                         for k in keys]
                lines.append(f"| {schedule} | {label} | {sizes[size]} | {row['update_ms']:.3f} | "
                             + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("EDGETRACK_SHARED", str(shared_dir()))  # OpenCV TrackerNano's weights
    cv2.setNumThreads(1)
    big = tuple(int(v) for v in args.big.lower().split("x"))
    target_module.crop_square = _timed(target_module.crop_square, "crop")
    samples: dict = {}
    shapes: dict[str, set] = {"native": set(), "big": set()}
    schedules = ("alone", "interleaved") if args.schedule == "both" else (args.schedule,)
    try:
        for name in [s.strip() for s in args.sequences.split(",") if s.strip()]:
            clips = load_sequence(Path(args.data) / name, args.frames, big)
            for size, (frames, _) in clips.items():
                shapes[size].add(f"{frames[0].shape[1]}x{frames[0].shape[0]}")
            for schedule in schedules:
                run_sequence(args, clips, samples, schedule)
    except (EdgeTrackError, OSError, IndexError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sizes = {k: "/".join(sorted(v)) for k, v in shapes.items()}
    cpu = cpu_description()
    report = {"cpu": cpu, "threads": 1, "sequences": args.sequences, "frames_per_sequence": args.frames or "all",
              "interleaved_block": args.block, "sizes": sizes,
              "schedules": {k: summarise(v) for k, v in samples.items()}}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    print(table(report["schedules"], sizes, cpu))
    return 0


if __name__ == "__main__":
    sys.exit(main())
