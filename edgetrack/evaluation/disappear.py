"""Target-absent frames for fitting and measuring the lost state (numpy + OpenCV only).

Real absent frames are rare in the data we have (NaN rows of the dev set and the pool's box files), so
:class:`Disappearing` makes the target vanish for stretches of a real sequence, read lazily frame by frame:

- ``cover``: the target's box (with a margin) is painted over with the background next to it (an occluder);
- ``noise``: the whole frame is grey noise (a dropped video link);
- ``away``: the frame is a frame of another video (the camera looks elsewhere).

The ground truth of those frames becomes NaN (absent); the target reappears where it really is afterwards.
:class:`FastMotion` keeps every k-th frame of a sequence (a 30 fps clip seen at 10 fps, a 10 fps one at 5):
targets that jump as they do in drone footage at 10 fps.

:func:`fit_and_eval_sets` gives the sequences calibration is fitted on (dev train split + the pool's train rows,
each also with its frames thinned) and evaluated on (the held-out set of :func:`edgetrack.data.heldout.
held_out_set`: dev val, the pool's val rows and ``data/val-videos``): no video in both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

KINDS = ("cover", "noise", "away")
MIN_FRAMES = 30  # shorter sequences get no synthetic stretch


class _FromBase:
    """What a sequence made from another (``self.base``) keeps of it: its first box and its source."""

    def __len__(self) -> int:
        return len(self.gt)

    @property
    def init_box(self) -> tuple[float, float, float, float]:
        return self.base.init_box

    @property
    def source(self) -> str:
        return getattr(self.base, "source", "")


@dataclass(frozen=True, eq=False)
class Disappearing(_FromBase):
    """``base`` with the target made absent on ``stretches`` = ((start, stop, kind), ...); ``donor`` gives the
    frames of ``away`` stretches. Has the reading interface of :class:`edgetrack.data.Sequence`."""

    base: object
    stretches: tuple[tuple[int, int, str], ...]
    donor: object | None = None
    name: str = ""
    gt: np.ndarray = field(default=None)  # type: ignore[assignment]
    absent: np.ndarray = field(default=None)  # type: ignore[assignment]
    gt_complete: bool = True
    arrays = None

    def __post_init__(self) -> None:
        gt = np.array(self.base.gt, dtype=np.float64, copy=True)
        absent = np.array(self.base.absent, dtype=bool, copy=True)
        for start, stop, kind in self.stretches:
            if kind not in KINDS or not 0 < start < stop <= len(gt):
                raise ValueError(f"bad stretch {(start, stop, kind)} for {len(gt)} frames")
            gt[start:stop] = np.nan
            absent[start:stop] = True
        gt.setflags(write=False)
        absent.setflags(write=False)
        object.__setattr__(self, "gt", gt)
        object.__setattr__(self, "absent", absent)
        object.__setattr__(self, "name", self.name or f"{self.base.name}~gone")

    def frame(self, index: int) -> np.ndarray:
        frame = self.base.frame(index)
        for start, stop, kind in self.stretches:
            if start <= index < stop:
                return self._vanish(frame, index, kind)
        return frame

    def _vanish(self, frame: np.ndarray, index: int, kind: str) -> np.ndarray:
        if kind == "noise":
            rng = np.random.default_rng(index)
            return np.clip(rng.normal(114.0, 20.0, frame.shape), 0, 255).astype(np.uint8)
        if kind == "away" and self.donor is not None:
            other = self.donor.frame(index % len(self.donor))
            return cv2.resize(other, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
        return cover(frame, self.base.gt[index])


@dataclass(frozen=True, eq=False)
class FastMotion(_FromBase):
    """Every ``step``-th frame of ``base`` (frame 0 first): the same footage with ``step`` times the motion per
    update. Has the reading interface of :class:`edgetrack.data.Sequence`."""

    base: object
    step: int

    def __post_init__(self) -> None:
        if self.step < 2:
            raise ValueError(f"FastMotion needs a step of at least 2, got {self.step}")

    @property
    def name(self) -> str:
        return f"{self.base.name}~x{self.step}"

    @property
    def gt(self) -> np.ndarray:
        return self.base.gt[::self.step]

    @property
    def absent(self) -> np.ndarray:
        return self.base.absent[::self.step]

    gt_complete = True
    arrays = None

    def frame(self, index: int) -> np.ndarray:
        return self.base.frame(index * self.step)

    def head(self, n_frames: int | None) -> FastMotion:
        return self if n_frames is None else FastMotion(self.base.head(n_frames * self.step), self.step)


def fast_motion(seqs, min_frames: int = 3 * MIN_FRAMES) -> list[FastMotion]:
    """Thinned copies of the sequences long enough to stay :data:`MIN_FRAMES` long: every 3rd frame of 30 fps
    footage (OTB, VOT), every 2nd of the rest (UAV123@10fps, the pool's clips of at most 10 fps)."""
    from ..data.sources import source_of

    out = []
    for seq in seqs:
        step = 3 if source_of(seq) in ("OTB", "VOT") else 2
        if len(seq) >= max(min_frames, step * MIN_FRAMES):
            out.append(FastMotion(seq, step))
    return out


def cover(frame: np.ndarray, box: np.ndarray, margin: float = 0.25) -> np.ndarray:
    """``frame`` with ``box`` (x, y, w, h, grown by ``margin`` of its size + 4 px) painted over with the
    background beside it (to the left or right, else above or below; else the frame's mean colour)."""
    out = frame.copy()
    ih, iw = frame.shape[:2]
    x, y, w, h = (float(v) for v in box)
    if not all(map(math.isfinite, (x, y, w, h))):
        return out
    mx, my = margin * w / 2 + 4, margin * h / 2 + 4
    x0, y0 = max(0, int(x - mx)), max(0, int(y - my))
    x1, y1 = min(iw, int(math.ceil(x + w + mx))), min(ih, int(math.ceil(y + h + my)))
    if x1 <= x0 or y1 <= y0:
        return out
    bw, bh = x1 - x0, y1 - y0
    for dx, dy in ((-bw, 0), (bw, 0), (0, -bh), (0, bh)):
        sx, sy = x0 + dx, y0 + dy
        if 0 <= sx and sx + bw <= iw and 0 <= sy and sy + bh <= ih:
            out[y0:y1, x0:x1] = frame[sy:sy + bh, sx:sx + bw]
            return out
    out[y0:y1, x0:x1] = np.array(cv2.mean(frame)[:3], dtype=np.float64).round().astype(np.uint8)
    return out


def plan_stretches(n: int, index: int) -> tuple[tuple[int, int, str], ...]:
    """Two stretches (at 30% and 65% of the sequence, each 12% of it, 8 to 30 frames) whose kinds rotate with
    ``index``; one for sequences under 60 frames; none under :data:`MIN_FRAMES`."""
    if n < MIN_FRAMES:
        return ()
    length = int(min(30, max(8, round(0.12 * n))))
    starts = (0.3, 0.65) if n >= 60 else (0.4,)
    return tuple((int(s * n), min(n, int(s * n) + length), KINDS[(index + k) % len(KINDS)])
                 for k, s in enumerate(starts))


def with_disappearances(seqs) -> list[Disappearing]:
    """Every sequence (long enough) with its planned stretches; the next sequence of the list donates the
    ``away`` frames (so the donor is always another video of the same set)."""
    seqs = [s for s in seqs if len(s) >= MIN_FRAMES]
    out = []
    for i, seq in enumerate(seqs):
        donor = seqs[(i + 1) % len(seqs)] if len(seqs) > 1 else None
        stretches = tuple(s for s in plan_stretches(len(seq), i) if donor is not None or s[2] != "away")
        out.append(Disappearing(seq, stretches, donor))
    return out


def source_label(seq) -> str:
    """Where a sequence comes from, as the benchmark tables say it: ``OTB``, ``UAV123``, ``VOT`` for the dev
    set, ``pool-<source>`` for the video pool, ``videos-<source>`` for ``data/val-videos``; a
    :class:`Disappearing` or :class:`FastMotion` has its base's."""
    from ..data.sources import source_of

    if isinstance(seq, _FromBase):
        return source_label(seq.base)
    src = source_of(seq.name)
    if not hasattr(seq, "video"):
        return src
    return f"videos-{src}" if Path(seq.video.path).parent.name == "val-videos" else f"pool-{src}"


# ------------------------------------------------------------------------------------------------ data sets
@dataclass(frozen=True)
class Part:
    """A named set of sequences: ``real`` as read (every frame scored), ``gone`` with synthetic stretches."""

    name: str
    real: tuple
    gone: tuple = ()


def dev_sequences(shared: Path, split: str) -> tuple:
    """The dev sequences of the package's ``dev`` split side ``split`` (``train`` or ``val``); () without them."""
    from ..data import open_dataset
    from ..data.heldout import split_names

    dev = shared / "data" / "dev-sequences"
    if not dev.is_dir():
        return ()
    return tuple(open_dataset(dev, "folder").select(split_names("dev", split)).sequences)


def _pool(shared: Path, split: str):
    from ..data import read_videos

    pool = shared / "data" / "train-videos"
    if not pool.is_dir():
        return ()
    return tuple(s for s in read_videos(pool, split=split) if s.unscored_reason is None)


def fit_and_eval_sets(shared: str | Path, max_frames: int | None = None) -> dict[str, Part]:
    """``fit``: dev train split + the pool's train rows with boxes, and their fast-motion copies
    (:func:`fast_motion`); ``eval``: the held-out set (:func:`edgetrack.data.heldout.held_out_set`: dev val, the
    pool's val rows, ``data/val-videos``). Each part's ``gone`` are its sequences with synthetic
    disappearances. Sequences cut to ``max_frames``."""
    from ..data.heldout import held_out_set

    shared = Path(shared)
    train = dev_sequences(shared, "train") + _pool(shared, "train")
    fit = [s.head(max_frames) for s in (*train, *fast_motion(train))]
    held = tuple(s.head(max_frames) for s in held_out_set(shared).dataset)
    return {"fit": Part("fit", tuple(fit), tuple(with_disappearances(fit))),
            "eval": Part("eval", held, tuple(with_disappearances(held)))}


def synthetic_part(n: int = 4, n_frames: int = 80, seed: int = 0) -> Part:
    """Generated sequences (no data needed) with disappearances: what an export re-calibrates on without data."""
    from ..data.synthetic import synthetic_sequence

    real = tuple(synthetic_sequence(seed * 100 + i, n_frames=n_frames) for i in range(n))
    return Part("synthetic", real, tuple(with_disappearances(real)))
