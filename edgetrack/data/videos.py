"""A folder of video files, each with an optional box file beside it (format ``videos``)::

    clips/
      MANIFEST.tsv        optional: name, file, frames, has_gt (yes/no/init_only), split, aerial, ... per video
      street.mp4          any video OpenCV decodes (.mp4 .avi .mov .mkv .webm ...)
      street.txt          optional: one x,y,w,h row per frame (1-based pixels, as OTB), nan where absent
      park.avi            no box file: frames only (training as unlabeled footage; never scored)

A box file with fewer rows than frames is partially labelled (``gt_complete=False``; one row = only the first
box is known, "init only"). Frames are decoded on demand (:class:`~edgetrack.data.videofile.VideoFrames`).
Sequences without full ground truth are kept (they are training footage) but say why they cannot be scored
(:attr:`VideoSequence.unscored_reason`).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from edgetrack.errors import DataError

from .gtfile import read_boxes
from .sequence import Dataset, absence_flags
from .sources import known_source, source_of
from .videofile import VIDEO_SUFFIXES, VideoFrames, is_video_file

MANIFEST = "MANIFEST.tsv"
HAS_GT = ("yes", "no", "init_only")


@dataclass(frozen=True, eq=False)
class VideoSequence:
    """One target in one video file, with the interface of :class:`edgetrack.data.Sequence`.

    ``gt`` is (N, 4) ``x,y,w,h``; rows are NaN where the target is absent or (``gt_complete=False``) where no
    box is known. ``meta`` holds the manifest row (or what was derived without one) with at least ``has_gt``
    (``yes``, ``no``, ``init_only`` or ``partial``), ``split`` and ``aerial`` ('' when unknown).
    """

    name: str
    gt: np.ndarray
    video: VideoFrames
    absent: np.ndarray | None = None
    attributes: dict[str, bool] = field(default_factory=dict)
    gt_complete: bool = True
    meta: dict[str, str] = field(default_factory=dict)
    source: str = ""

    arrays: ClassVar[None] = None  # frames are decoded from the video, never held in memory

    def __post_init__(self) -> None:
        gt = np.array(self.gt, dtype=np.float64, copy=True)
        if gt.ndim != 2 or gt.shape[1] != 4 or not 1 <= len(gt) <= len(self.video):
            raise DataError(f"sequence '{self.name}': ground truth of shape {gt.shape} for {len(self.video)} "
                            f"frames of {self.video.path}")
        gt.setflags(write=False)
        object.__setattr__(self, "gt", gt)
        object.__setattr__(self, "absent", absence_flags(self.name, gt, self.gt_complete, self.absent))
        object.__setattr__(self, "source", self.source or source_of(self.name))

    def __len__(self) -> int:
        return len(self.gt)

    def __iter__(self):
        for i in range(len(self)):
            yield self.frame(i)

    def __repr__(self) -> str:
        return (f"VideoSequence(name={self.name!r}, frames={len(self)}, has_gt={self.has_gt!r}, "
                f"split={self.split!r}, source={self.source!r})")

    @property
    def path(self) -> str:
        """The video file."""
        return self.video.path

    @property
    def has_gt(self) -> str:
        return self.meta.get("has_gt", "yes" if self.gt_complete else "partial")

    @property
    def split(self) -> str:
        return self.meta.get("split", "")

    @property
    def aerial(self) -> bool | None:
        value = self.meta.get("aerial", "").strip().lower()
        return {"yes": True, "no": False}.get(value)

    @property
    def labeled(self) -> bool:
        """True when the first frame has a usable box (a tracker can be initialised)."""
        x, y, w, h = self.gt[0]
        return bool(np.isfinite(self.gt[0]).all() and w > 0 and h > 0)

    @property
    def unscored_reason(self) -> str | None:
        """Why this sequence cannot be scored (None when it has a box for every frame)."""
        if self.gt_complete and self.labeled:
            return None
        has_gt = self.has_gt
        if has_gt == "no":
            return "no ground truth (frames only)"
        if has_gt == "init_only":
            return "only the first box is known (has_gt=init_only)"
        known = int(np.isfinite(self.gt).all(axis=1).sum())
        return f"ground truth for {known} of {len(self)} frames only"

    @property
    def init_box(self) -> tuple[float, float, float, float]:
        """The first frame's box, the one a tracker is initialised with."""
        if not self.labeled:
            raise DataError(f"sequence '{self.name}' has no first-frame box ({self.path})")
        x, y, w, h = (float(v) for v in self.gt[0])
        return (x, y, w, h)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as a BGR uint8 HxWx3 array."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} out of range for '{self.name}' ({len(self)} frames)")
        return self.video.read(index % len(self))

    def head(self, n_frames: int | None) -> VideoSequence:
        """The first ``n_frames`` frames (the whole sequence when None or longer)."""
        if n_frames is None or n_frames >= len(self):
            return self
        if n_frames < 1:
            raise DataError(f"cannot cut '{self.name}' to {n_frames} frames")
        return replace(self, gt=self.gt[:n_frames], absent=self.absent[:n_frames])


def read_video_boxes(path: str | os.PathLike, video: VideoFrames) -> np.ndarray:
    """Read the box file of ``video``: at most one ``x,y,w,h`` row per frame, the first row a usable box,
    no negative sizes, no box entirely outside the frame (boxes must be in the video's pixels)."""
    boxes = read_boxes(path)
    n, width, height = len(video), video.info.width, video.info.height
    if len(boxes) > n:
        raise DataError(f"{path}: {len(boxes)} boxes but {video.path} has {n} frames")
    first = boxes[0]
    if not (np.isfinite(first).all() and first[2] > 0 and first[3] > 0):
        raise DataError(f"{path}, line 1: the first frame needs a box with positive size, got {first.tolist()}")
    for i, (x, y, w, h) in enumerate(boxes):
        if np.isnan(x):
            continue
        if w < 0 or h < 0:
            raise DataError(f"{path}, line {i + 1}: negative box size ({w:g} x {h:g})")
        if x > width + 1 or y > height + 1 or x + w < 1 or y + h < 1:
            raise DataError(f"{path}, line {i + 1}: box {[float(v) for v in (x, y, w, h)]} lies outside the "
                            f"{width}x{height} frames of {video.path} (boxes must be in the video's pixels)")
    return boxes


def read_manifest(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a ``MANIFEST.tsv`` (tab-separated, header line first; ``name`` and ``file`` required)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if not rows or not {"name", "file"} <= set(rows[0]):
        raise DataError(f"{path}: expected a tab-separated header with at least 'name' and 'file' columns")
    for k, row in enumerate(rows, start=2):
        if None in row or any(v is None for v in row.values()):
            raise DataError(f"{path}, line {k}: the number of fields differs from the header's")
        row.update({key: value.strip() for key, value in row.items()})
        if not row["name"] or not row["file"]:
            raise DataError(f"{path}, line {k}: empty 'name' or 'file'")
        if row.get("has_gt", "") not in HAS_GT + ("",):
            raise DataError(f"{path}, line {k}: has_gt must be one of {', '.join(HAS_GT)}, got {row['has_gt']!r}")
    return rows


def _check_manifest_row(row: dict[str, str], video: VideoFrames, where: str) -> None:
    info = video.info
    for key, actual in (("frames", info.frames), ("width", info.width), ("height", info.height)):
        value = row.get(key, "")
        if value and value.isdigit() and int(value) != actual:
            raise DataError(f"{where}: {key} is {value} but {video.path} has {actual}")


def _gt_of(video: VideoFrames, box_file: Path, has_gt: str, where: str) -> tuple[np.ndarray, bool, str]:
    """Ground truth, completeness and ``has_gt`` of one video, checked against the manifest's ``has_gt``."""
    n = len(video)
    if not box_file.is_file():
        if has_gt in ("yes", "init_only"):
            raise DataError(f"{where}: has_gt={has_gt} but the box file {box_file} is missing")
        return np.full((1, 4), np.nan), False, "no"
    if has_gt == "no":
        raise DataError(f"{where}: has_gt=no but there is a box file {box_file}; fix the manifest or remove it")
    boxes = read_video_boxes(box_file, video)
    if has_gt == "init_only":
        return boxes[:1], n == 1, "init_only"
    if has_gt == "yes" and len(boxes) != n:
        raise DataError(f"{box_file}: {len(boxes)} boxes for the {n} frames of {video.path} (has_gt=yes)")
    derived = "yes" if len(boxes) == n else ("init_only" if len(boxes) == 1 else "partial")
    return boxes, len(boxes) == n, derived


def video_sequence(video_path: str | os.PathLike, row: dict[str, str] | None = None,
                   where: str | None = None) -> VideoSequence:
    """One :class:`VideoSequence` from a video file, its ``<stem>.txt`` box file when there is one, and its
    manifest ``row`` (checked against the file: frame count, size, presence of boxes)."""
    video_path = Path(video_path)
    row = dict(row or {})
    name = row.get("name") or video_path.stem
    where = where or str(video_path)
    video = VideoFrames(video_path)
    if row:
        _check_manifest_row(row, video, where)
    gt, complete, has_gt = _gt_of(video, video_path.with_suffix(".txt"), row.get("has_gt", ""), where)
    if len(gt) < len(video):
        gt = np.concatenate([gt, np.full((len(video) - len(gt), 4), np.nan)])
    title = row.get("original_dataset_and_sequence", "")
    source = known_source(title.split()[0]) if title.split() else None
    meta = {"split": "", "aerial": "", **row, "has_gt": has_gt}
    return VideoSequence(name, gt, video, gt_complete=complete, meta=meta, source=source or source_of(name))


def _entries(root: Path, manifest: list[dict[str, str]] | None) -> list[tuple[Path, dict[str, str], str]]:
    """(video path, manifest row or {}, where) for every video: manifest rows first, then unlisted files."""
    out, listed = [], set()
    for k, row in enumerate(manifest or [], start=2):
        path = root / row["file"]
        if not path.is_file():
            raise DataError(f"{root / MANIFEST}, line {k}: video file not found: {path}")
        out.append((path, row, f"{root / MANIFEST}, line {k} ('{row['name']}')"))
        listed.add(path.name)
    for path in sorted(p for p in root.iterdir() if is_video_file(p) and p.name not in listed):
        out.append((path, {}, str(path)))
    return out


def read_videos(root: str | os.PathLike, split: str | None = None, require_gt: bool | None = None) -> Dataset:
    """Read a folder of videos (see the module docstring) as a :class:`Dataset` of :class:`VideoSequence`.

    ``split`` keeps the rows of ``MANIFEST.tsv`` with that ``split`` value (``"train"``, ``"val"``);
    ``require_gt=True`` keeps only sequences with a box for every frame, ``False`` only those without.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    manifest = read_manifest(root / MANIFEST) if (root / MANIFEST).is_file() else None
    entries = _entries(root, manifest)
    if not entries:
        raise DataError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in {root}")
    if split is not None:
        if manifest is None:
            raise DataError(f"selecting split '{split}' needs {root / MANIFEST} (with a 'split' column)")
        found = sorted({row.get("split", "") for _, row, _ in entries if row})
        entries = [e for e in entries if e[1].get("split") == split]
        if not entries:
            raise DataError(f"{root / MANIFEST}: no rows of split '{split}' (splits there: {found})")
    seqs = [video_sequence(path, row, where) for path, row, where in entries]
    if require_gt is not None:
        seqs = [s for s in seqs if s.gt_complete == bool(require_gt)]
    return Dataset(root.name, tuple(seqs), "videos", str(root))


#: The reader of a training pool folder such as ``../shared/data/train-videos`` (same as :func:`read_videos`).
read_video_pool = read_videos


def training_sources(dataset) -> list:
    """What :class:`edgetrack.training.pairs.PairSampler` takes for each sequence: fully labelled sequences as
    they are, the others (no boxes, first box only, partially labelled) as their video path (unlabeled)."""
    return [seq.path if getattr(seq, "unscored_reason", None) else seq for seq in dataset]
