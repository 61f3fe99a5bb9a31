"""``edgetrack track SOURCE [--bbox x,y,w,h]``: track one object through a video file, image folder, camera or
stream, writing an annotated video, a box file and/or JSON lines.

Every output path is checked before the model loads. Ctrl+C or SIGTERM stops cleanly: the annotated video and
the boxes of the frames tracked so far are finalised and kept (exit status 130).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field

import numpy as np

from ..data.fileio import atomic_write_text
from ..errors import InputError
from ..runtime import Tracker
from ..video import AnnotatedWriter, check_video_out, check_writable_file, draw_box, open_source
from .common import parse_box, sigterm_as_interrupt


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="track one object through a video file, image folder, camera or stream",
                       description="Track one object and write an annotated video, the boxes and/or JSON lines.")
    p.add_argument("source", help="video file; folder of images (natural order: 2.jpg before 10.jpg); camera "
                                  "index (0, 1, ...); stream URL (rtsp://, http(s)://); or a GStreamer pipeline "
                                  "('... ! appsink')")
    p.add_argument("--bbox", default=None, help="initial box x,y,w,h in pixels of the first frame (omitted: drag "
                                                "it on the first frame, which needs a GUI OpenCV and a display)")
    p.add_argument("--model", default=None, help="checkpoint or exported folder (default: bundled model)")
    p.add_argument("--backend", default="auto", help="auto, onnxruntime, openvino, tensorrt or torch")
    p.add_argument("--device", default="cpu", help="cpu; cuda:N (onnxruntime-gpu, TensorRT, torch); gpu or npu "
                                                   "(OpenVINO)")
    p.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    p.add_argument("--allow-ungated", action="store_true",
                   help="load an exported folder that has no passed accuracy gate (with a warning)")
    p.add_argument("--out", default=None, help="annotated video to write (.mp4, .m4v, .mov, .avi, .mkv, .webm)")
    p.add_argument("--boxes", default=None, help="text file to write one x,y,w,h,score line per frame")
    p.add_argument("--jsonl", default=None, help="file to write one JSON object per frame (box, score, state, "
                                                 "confidence, latency, dropped frames)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (at least 1)")
    p.add_argument("--realtime", choices=("auto", "on", "off"), default="auto",
                   help="drop frames when tracking falls behind the source (auto: on for cameras and streams)")
    p.add_argument("--show", action="store_true", help="show the tracking in a window (q or Esc stops); needs a "
                                                       "GUI build of OpenCV and a display")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class TrackOptions:
    out: str | None = None
    max_frames: int | None = None
    quiet: bool = False
    show: bool = False
    realtime: str = "auto"


@dataclass
class TrackRun:
    """What a run produced: one dict per processed frame, frames dropped to keep up, whether it was stopped."""

    rows: list[dict] = field(default_factory=list)
    dropped: int = 0
    interrupted: bool = False
    source: str = ""


def state_of(result) -> str:
    """The result's state name (``TRACKING``/``LOST``; the tracker's own ``state`` when it reports one)."""
    state = getattr(result, "state", None)
    if state is not None:
        return str(getattr(state, "name", state)).upper()
    return "LOST" if result.lost else "TRACKING"


def _frames(src, realtime: str):
    """Frames of ``src``; a live source in real-time mode goes through :class:`LatestFrames` (files and folders
    are read frame by frame whatever ``realtime`` says: they are never behind)."""
    if src.live and realtime != "off":
        from ..live import LatestFrames

        reader = LatestFrames(src)
        return iter(reader), reader
    return src.frames(), None


def _step(tracker: Tracker, frame: np.ndarray, i: int, box, dropped: int) -> tuple[dict, np.ndarray]:
    if i == 0:
        tracker.init(frame, box)
        row = dict(frame=0, box=[float(v) for v in box], score=1.0, state="INIT", confidence=1.0,
                   latency_ms=tracker.init_ms, dropped=dropped)
        return row, draw_box(frame, box, label="init")
    res = tracker.update(frame)
    state = state_of(res)
    row = dict(frame=i, box=list(res.box), score=res.score, state=state,
               confidence=float(getattr(res, "confidence", res.score)), latency_ms=res.latency_ms, dropped=dropped)
    return row, draw_box(frame, res.box, res.score, res.lost, state=state)


def track_source(tracker: Tracker, source, box, opts: TrackOptions, select=None) -> TrackRun:
    """Track through ``source``; stops cleanly on Ctrl+C/SIGTERM, keeping the video and rows so far."""
    from tqdm import tqdm

    src = open_source(source)
    total = min(src.count, opts.max_frames) if src.count and opts.max_frames else (opts.max_frames or src.count)
    frames, reader = _frames(src, opts.realtime)
    run, writer = TrackRun(source=src.name), None
    bar = tqdm(total=total, disable=opts.quiet, unit="frame", desc=src.name)
    try:
        with sigterm_as_interrupt():
            for i, frame in enumerate(frames):
                if opts.max_frames is not None and i >= opts.max_frames:
                    break
                if i == 0 and box is None:
                    box = select(frame)
                run.dropped = reader.dropped if reader is not None else 0
                row, shown = _step(tracker, frame, i, box, run.dropped)
                run.rows.append(row)
                if opts.out and writer is None:
                    writer = AnnotatedWriter(opts.out, src.fps, (frame.shape[1], frame.shape[0]))
                if writer is not None:
                    writer.write(shown)
                bar.update(1)
                if opts.show:
                    from ..live import show

                    if not show(shown):
                        break
    except KeyboardInterrupt:
        run.interrupted = True
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()
        if reader is not None:
            reader.close()
            run.dropped = reader.dropped
        if opts.show:
            from ..live import close_windows

            close_windows()
    if writer is not None:
        writer.close()
    return run


def _write_boxes(path: str, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(",".join(f"{v:.3f}" for v in (*r["box"], r["score"])) + "\n" for r in rows))


def _write_jsonl(path: str, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _check_args(args: argparse.Namespace):
    """Everything that can be checked before the model loads and the first frame is read."""
    box = parse_box(args.bbox) if args.bbox is not None else None
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.out:
        check_video_out(args.out)
    for flag, path in (("--boxes", args.boxes), ("--jsonl", args.jsonl)):
        if path:
            check_writable_file(path, flag)
    if args.show or box is None:
        from ..live import require_gui

        require_gui("--show" if args.show else "running without --bbox (interactive box selection)")
    return box


def run(args: argparse.Namespace) -> int:
    box = _check_args(args)
    tracker = Tracker(args.model, backend=args.backend, threads=args.threads, device=args.device,
                      allow_ungated=args.allow_ungated)
    from ..live import select_box

    opts = TrackOptions(args.out, args.max_frames, args.quiet, args.show, args.realtime)
    result = track_source(tracker, args.source, box, opts, select=select_box)
    if args.boxes:
        _write_boxes(args.boxes, result.rows)
    if args.jsonl:
        _write_jsonl(args.jsonl, result.rows)
    lat = np.array([r["latency_ms"] for r in result.rows[1:]]) if len(result.rows) > 1 else np.array([np.nan])
    print(f"tracked {len(result.rows)} frames with {tracker.backend.name} on {tracker.device}: init "
          f"{tracker.init_ms:.1f} ms, update median {np.median(lat):.2f} ms ({1000.0 / np.median(lat):.0f} FPS)"
          + (f"; {result.dropped} frames dropped to keep up with the source" if result.dropped else ""))
    for label, path in (("annotated video", args.out if result.rows else None), ("boxes", args.boxes),
                        ("json lines", args.jsonl)):
        if path:
            print(f"{label}: {path}")
    if result.interrupted:
        print("interrupted: the frames tracked so far are saved", file=sys.stderr)
        return 130
    return 0
