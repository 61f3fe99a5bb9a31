"""``edgetrack demo``: no data, no download: track a generated clip with the default model and report."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..data.synthetic import make_sequence
from ..errors import InputError
from ..evaluation.metrics import score_sequence
from ..runtime import Tracker
from ..video import AnnotatedWriter, check_video_out, draw_box


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="track a generated clip with the default model (no data needed)")
    p.add_argument("--model", default=None, help="checkpoint or exported folder (default: bundled model)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--out", default="edgetrack_demo.mp4", help="annotated video to write")
    p.add_argument("--frames", type=int, default=120, help="clip length (at least 2: the first frame is the init)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run_demo(tracker: Tracker, out: str | Path, n_frames: int, seed: int) -> dict[str, float]:
    """Track a deterministic synthetic clip; write the annotated video; return AUC, precision and FPS."""
    if n_frames < 2:
        raise InputError(f"a demo clip needs at least 2 frames, got {n_frames}")
    frames, gt = make_sequence(seed, n_frames=n_frames, size=(480, 360), events=("scale", "shake", "blur"))
    writer = AnnotatedWriter(out, 30.0, (frames[0].shape[1], frames[0].shape[0]))
    preds = np.empty_like(gt)
    preds[0] = gt[0]
    latencies = []
    try:
        tracker.init(frames[0], gt[0])
        writer.write(draw_box(frames[0], gt[0], label="init"))
        for i in range(1, len(frames)):
            start = time.perf_counter()
            res = tracker.update(frames[i])
            latencies.append((time.perf_counter() - start) * 1000.0)
            preds[i] = res.box
            writer.write(draw_box(frames[i], res.box, res.score, res.lost))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    curves = score_sequence(preds, gt)
    med = float(np.median(latencies))
    return {"success_auc": curves.success_auc, "precision_20": curves.precision_20,
            "update_ms_p50": med, "fps": 1000.0 / med, "init_ms": tracker.init_ms}


def run(args: argparse.Namespace) -> int:
    if args.frames < 2:
        raise InputError(f"--frames must be at least 2 (one init frame and one tracked frame), got {args.frames}")
    if args.seed < 0:
        raise InputError(f"--seed must be 0 or more, got {args.seed}")
    check_video_out(args.out)
    tracker = Tracker(args.model, backend=args.backend, threads=1)
    result = run_demo(tracker, args.out, args.frames, args.seed)
    print(f"demo: {args.frames} synthetic frames, model {tracker.spec.name or tracker.files.root}, "
          f"backend {tracker.backend.name}")
    print(f"  success AUC {result['success_auc']:.3f}  precision@20px {result['precision_20']:.3f}  "
          f"update {result['update_ms_p50']:.2f} ms median ({result['fps']:.0f} FPS)  init {result['init_ms']:.1f} ms")
    print(f"  annotated video: {args.out}")
    return 0
