"""Pseudo-tracks: targets for videos without boxes, supplied by the teacher (label-free distillation).

For every unlabeled video the teacher tracks a few objects from start to end. A track starts on the most
trackable of several random boxes (the one the teacher follows with the highest score one frame later), runs
while the teacher's score stays above ``min_score`` and is closed after ``patience`` low-score frames; a new one
starts on the next frame. Each track becomes a labeled source of its own (frames outside it are absent), so a
training pair never spans two objects. Tracks are cached per (teacher weights, video, settings) in
``cache_dir`` and written atomically: the teacher is paid once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..data.fileio import atomic_path
from ..geometry import cxcywh_to_xywh
from .augment import random_box

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PseudoConfig:
    tracks: int = 2              # objects followed per video (one after another when a track ends)
    candidates: int = 8          # random boxes tried when a track starts
    box: tuple[float, float] = (0.12, 0.35)  # box side as a fraction of the frame's short side
    min_score: float = 0.6
    patience: int = 3
    min_length: int = 8
    seed: int = 0


class PseudoTrack:
    """One teacher track on a video: the interface of :class:`edgetrack.data.Sequence` the pair sampler uses."""

    def __init__(self, video, name: str, gt: np.ndarray) -> None:
        self.video, self.name = video, name
        self.gt = np.asarray(gt, dtype=np.float64)
        self.absent = ~np.isfinite(self.gt).all(axis=1)

    def __len__(self) -> int:
        return len(self.gt)

    def frame(self, index: int) -> np.ndarray:
        return self.video.frame(index)


def _key(teacher_digest: str, video_path: str, cfg: PseudoConfig) -> str:
    h = hashlib.sha256(teacher_digest.encode())
    h.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    h.update(str(Path(video_path).stat().st_size).encode())
    return f"{Path(video_path).stem}-{h.hexdigest()[:12]}"


def _start(tracker, video, i: int, cfg: PseudoConfig, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The most trackable of ``cfg.candidates`` random boxes on frame ``i`` (teacher score on frame i+1)."""
    first, second = video.frame(i), video.frame(min(i + 1, len(video) - 1))
    best, best_score = None, -1.0
    for _ in range(cfg.candidates):
        box = cxcywh_to_xywh(*random_box(first.shape, cfg.box, rng))
        tracker.init(first, box)
        score = float(tracker.update(second).score)
        if score > best_score:
            best, best_score = box, score
    return best, best_score


def track_video(tracker, video, cfg: PseudoConfig) -> list[np.ndarray]:
    """Teacher tracks over ``video`` (``len``, ``frame(i)``): a list of ``(N, 4)`` xywh arrays, NaN outside."""
    rng = np.random.default_rng([cfg.seed, len(video)])
    n, out, i = len(video), [], 0
    while i < n - cfg.min_length and len(out) < cfg.tracks:
        box, _ = _start(tracker, video, i, cfg, rng)
        gt = np.full((n, 4), np.nan)
        gt[i] = box
        tracker.init(video.frame(i), box)
        low, j = 0, i + 1
        while j < n and low < cfg.patience:
            result = tracker.update(video.frame(j))
            low = low + 1 if result.score < cfg.min_score else 0
            if low == 0:
                gt[j] = result.box
            j += 1
        if np.isfinite(gt).all(axis=1).sum() >= cfg.min_length:
            out.append(gt)
        i = j
    return out


def pseudo_tracks(teacher_path: str, videos: list, cache_dir: str | os.PathLike, cfg: PseudoConfig,
                  progress: bool = True) -> list[PseudoTrack]:
    """Teacher tracks for every video (``VideoSource``-like objects with ``path``), cached in ``cache_dir``."""
    from tqdm import tqdm

    from ..runtime import Tracker

    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    tracker, tracks = None, []
    digest = hashlib.sha256(Path(teacher_path).read_bytes()).hexdigest()
    for video in tqdm(videos, desc="pseudo-tracks", disable=not progress, unit="video"):
        file = cache / f"{_key(digest, video.path, cfg)}.npz"
        if file.exists():
            arrays = list(np.load(file)["tracks"])
        else:
            tracker = tracker or Tracker(teacher_path)
            arrays = track_video(tracker, video, cfg)
            with atomic_path(file) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, tracks=np.asarray(arrays).reshape(-1, len(video), 4))
        tracks += [PseudoTrack(video, f"{Path(video.name).stem}.{k + 1}", gt) for k, gt in enumerate(arrays)]
    if not tracks and videos:
        logger.warning("the teacher kept no pseudo-track on %d unlabeled videos (score never >= %.2f): they are "
                       "used with random boxes only", len(videos), cfg.min_score)
    return tracks
