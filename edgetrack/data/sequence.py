"""``Sequence`` (frames + ground truth of one target) and ``Dataset`` (an ordered set of sequences)."""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgetrack.errors import DataError


def absence_flags(name: str, gt: np.ndarray, gt_complete: bool, extra) -> np.ndarray:
    """Read-only per-frame absence: NaN rows of complete ground truth, or'ed with explicit ``extra`` flags."""
    n = len(gt)
    absent = np.isnan(gt).any(axis=1) if gt_complete else np.zeros(n, dtype=bool)
    if extra is not None:
        flags = np.asarray(extra, dtype=bool)
        if flags.shape != (n,):
            raise DataError(f"sequence '{name}': {len(flags)} absence flags for {n} frames")
        absent = absent | flags
    absent.setflags(write=False)
    return absent


def _check_gt(name: str, gt: np.ndarray, n_frames: int, gt_complete: bool) -> np.ndarray:
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 2 or gt.shape[1] != 4:
        raise DataError(f"sequence '{name}': ground truth must be an (N, 4) array, got shape {gt.shape}")
    if n_frames == 0:
        raise DataError(f"sequence '{name}': no frames")
    if gt_complete and len(gt) != n_frames:
        raise DataError(
            f"sequence '{name}': {n_frames} frames but {len(gt)} ground-truth rows; "
            "every frame needs one row (NaN,NaN,NaN,NaN where the target is absent)"
        )
    if not gt_complete:
        if len(gt) > n_frames:
            raise DataError(f"sequence '{name}': {len(gt)} ground-truth rows for {n_frames} frames")
        padded = np.full((n_frames, 4), np.nan)
        padded[: len(gt)] = gt
        gt = padded
    first = gt[0]
    if not (np.all(np.isfinite(first)) and first[2] > 0 and first[3] > 0):
        raise DataError(f"sequence '{name}': the first frame has no usable box ({first.tolist()})")
    return gt


@dataclass(frozen=True, eq=False)
class Sequence:
    """One target in one video: lazily read frames and an (N, 4) ``x,y,w,h`` ground truth.

    ``gt`` rows are NaN where the target is absent (or, when ``gt_complete`` is False, where the
    ground truth is withheld, as on GOT-10k's test split). ``absent`` is True on frames the dataset
    marks as target-absent (NaN rows, and e.g. GOT-10k's ``absence.label`` or LaSOT's full occlusion /
    out-of-view flags). ``attributes`` maps attribute code to flag, empty when unknown.
    Frames come from ``frame_paths`` (read with ``cv2.imread``) or from in-memory ``arrays``.
    """

    name: str
    gt: np.ndarray
    frame_paths: tuple[str, ...] = ()
    arrays: tuple[np.ndarray, ...] | None = None
    absent: np.ndarray | None = None
    attributes: dict[str, bool] = field(default_factory=dict)
    gt_complete: bool = True

    def __post_init__(self) -> None:
        n = len(self.arrays) if self.arrays is not None else len(self.frame_paths)
        gt = _check_gt(self.name, self.gt, n, self.gt_complete)
        gt.setflags(write=False)
        object.__setattr__(self, "gt", gt)
        object.__setattr__(self, "absent", absence_flags(self.name, gt, self.gt_complete, self.absent))
        object.__setattr__(self, "frame_paths", tuple(str(p) for p in self.frame_paths))

    @classmethod
    def from_arrays(cls, name: str, frames: Iterable[np.ndarray], gt: np.ndarray, **kw) -> Sequence:
        """A sequence whose frames are in memory (BGR uint8 HxWx3 arrays)."""
        return cls(name=name, gt=gt, arrays=tuple(frames), **kw)

    def __len__(self) -> int:
        return len(self.gt)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.frame(i)

    def __repr__(self) -> str:
        return f"Sequence(name={self.name!r}, frames={len(self)}, absent={int(self.absent.sum())})"

    @property
    def init_box(self) -> tuple[float, float, float, float]:
        """The first frame's ground-truth box, the one a tracker is initialised with."""
        x, y, w, h = (float(v) for v in self.gt[0])
        return (x, y, w, h)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as a BGR uint8 HxWx3 array."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} out of range for '{self.name}' ({len(self)} frames)")
        if self.arrays is not None:
            return self.arrays[index]
        path = self.frame_paths[index]
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            reason = "missing" if not os.path.exists(path) else "unreadable"
            raise DataError(f"sequence '{self.name}': frame {index + 1} is {reason}: {path}")
        return image

    def head(self, n_frames: int | None) -> Sequence:
        """The first ``n_frames`` frames (the whole sequence when None or longer)."""
        if n_frames is None or n_frames >= len(self):
            return self
        if n_frames < 1:
            raise DataError(f"cannot cut '{self.name}' to {n_frames} frames")
        return Sequence(
            name=self.name,
            gt=self.gt[:n_frames],
            frame_paths=self.frame_paths[:n_frames],
            arrays=None if self.arrays is None else self.arrays[:n_frames],
            absent=self.absent[:n_frames],
            attributes=dict(self.attributes),
            gt_complete=self.gt_complete,
        )


@dataclass(frozen=True, eq=False)
class Dataset(SequenceABC):
    """An ordered, read-only set of sequences with a name and the attribute codes its sequences use."""

    name: str
    sequences: tuple[Sequence, ...]
    format: str = "folder"
    root: str = ""
    attribute_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [s.name for s in self.sequences]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DataError(f"dataset '{self.name}': duplicate sequence names {dupes}")

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            for seq in self.sequences:
                if seq.name == key:
                    return seq
            raise KeyError(f"no sequence '{key}' in dataset '{self.name}'")
        return self.sequences[key]

    def __iter__(self) -> Iterator[Sequence]:
        return iter(self.sequences)

    def __repr__(self) -> str:
        return f"Dataset(name={self.name!r}, format={self.format!r}, sequences={len(self)})"

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sequences]

    @property
    def n_frames(self) -> int:
        return sum(len(s) for s in self.sequences)

    def select(self, names: Iterable[str] | None = None, max_sequences: int | None = None) -> Dataset:
        """A dataset restricted to ``names`` (in this dataset's order) and/or its first ``max_sequences``."""
        seqs = list(self.sequences)
        if names is not None:
            wanted = list(dict.fromkeys(names))
            unknown = [n for n in wanted if n not in self.names]
            if unknown:
                raise DataError(f"dataset '{self.name}' has no sequence(s) {unknown}")
            seqs = [s for s in seqs if s.name in set(wanted)]
        if max_sequences is not None:
            seqs = seqs[:max_sequences]
        return Dataset(self.name, tuple(seqs), self.format, self.root, self.attribute_names)

    def head(self, n_frames: int | None) -> Dataset:
        """Every sequence cut to its first ``n_frames`` frames."""
        seqs = tuple(s.head(n_frames) for s in self.sequences)
        return Dataset(self.name, seqs, self.format, self.root, self.attribute_names)


def list_frames(folder: Path, exts: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")) -> list[Path]:
    """Image files of ``folder`` in frame order (numeric names sorted by number)."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.suffix.lower() in exts and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (int(p.stem) if p.stem.isdigit() else float("inf"), p.name))


def check_contiguous(files: list[Path], where: str) -> None:
    """Raise :class:`DataError` naming the first missing frame when numeric frame names have a gap."""
    numbers = [int(p.stem) for p in files if p.stem.isdigit()]
    if len(numbers) != len(files) or not numbers:
        return
    for prev, cur in zip(numbers, numbers[1:]):
        if cur != prev + 1:
            width = len(files[0].stem)
            missing = f"{prev + 1:0{width}d}{files[0].suffix}"
            raise DataError(f"{where}: missing image {missing} (frames jump {prev} -> {cur})")
