"""``edgetrack track SOURCE --bbox x,y,w,h``: track one object through a video, folder or camera."""
from __future__ import annotations

import argparse

import numpy as np

from ..data.fileio import atomic_write_text
from ..runtime import Tracker
from ..video import AnnotatedWriter, draw_box, open_source
from .common import parse_box


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="track one object through a video file, image folder or camera",
                       description="Track one object and write an annotated video and/or the boxes.")
    p.add_argument("source", help="video file, folder of images, or camera index (0, 1, ...)")
    p.add_argument("--bbox", required=True, help="initial box x,y,w,h in pixels of the first frame")
    p.add_argument("--model", default=None, help="checkpoint or exported folder (default: bundled model)")
    p.add_argument("--backend", default="auto", help="auto, onnxruntime, openvino, tensorrt or torch")
    p.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    p.add_argument("--out", default=None, help="annotated video to write (.mp4 or .avi)")
    p.add_argument("--boxes", default=None, help="text file to write one x,y,w,h,score line per frame")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _write_boxes(path: str, rows: list[tuple[float, ...]]) -> None:
    atomic_write_text(path, "".join(",".join(f"{v:.3f}" for v in row) + "\n" for row in rows))


def track_source(tracker: Tracker, source, box, out: str | None, max_frames: int | None,
                 quiet: bool = False) -> list[tuple[float, ...]]:
    """Track through ``source``; returns (x, y, w, h, score, latency_ms) per frame (first frame = init box)."""
    from tqdm import tqdm

    src = open_source(source)
    total = min(src.count, max_frames) if src.count and max_frames else (max_frames or src.count)
    rows: list[tuple[float, ...]] = []
    writer = None
    try:
        for i, frame in enumerate(tqdm(src.frames(), total=total, disable=quiet, unit="frame", desc=src.name)):
            if max_frames is not None and i >= max_frames:
                break
            if i == 0:
                tracker.init(frame, box)
                rows.append((*map(float, box), 1.0, tracker.init_ms))
                shown = draw_box(frame, box, label="init")
                if out:
                    writer = AnnotatedWriter(out, src.fps, (frame.shape[1], frame.shape[0]))
            else:
                res = tracker.update(frame)
                rows.append((*res.box, res.score, res.latency_ms))
                shown = draw_box(frame, res.box, res.score, res.lost)
            if writer is not None:
                writer.write(shown)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    return rows


def run(args: argparse.Namespace) -> int:
    box = parse_box(args.bbox)
    tracker = Tracker(args.model, backend=args.backend, threads=args.threads)
    rows = track_source(tracker, args.source, box, args.out, args.max_frames, args.quiet)
    if args.boxes:
        _write_boxes(args.boxes, [r[:5] for r in rows])
    lat = np.array([r[5] for r in rows[1:]]) if len(rows) > 1 else np.array([np.nan])
    print(f"tracked {len(rows)} frames with {tracker.backend.name}: init {tracker.init_ms:.1f} ms, "
          f"update median {np.median(lat):.2f} ms ({1000.0 / np.median(lat):.0f} FPS)")
    if args.out:
        print(f"annotated video: {args.out}")
    return 0
