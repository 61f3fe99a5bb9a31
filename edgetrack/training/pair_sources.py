"""Where training pairs read their frames: labeled sequences, unlabeled videos or frame folders (read ahead,
short ones decoded once), and a byte-bounded LRU of decoded frames (numpy + OpenCV)."""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgetrack.data.sequence import Sequence
from edgetrack.errors import DataError
from edgetrack.geometry import xywh_to_cxcywh
from edgetrack.video import IMAGE_SUFFIXES, open_source

READ_AHEAD = 64  # a video reader decodes forward up to this many frames instead of seeking


class FrameCache:
    """LRU of decoded frames bounded in bytes. Each process keeps its own: a pickled cache arrives empty."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[Any, np.ndarray] = OrderedDict()
        self._bytes = self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __getstate__(self) -> dict[str, int]:
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__init__(state["max_bytes"])

    def get(self, key: Any, load: Callable[[], np.ndarray]) -> np.ndarray:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return item
        self.misses += 1
        value = load()
        if value.nbytes <= self.max_bytes:
            value.setflags(write=False)
            self._items[key] = value
            self._bytes += value.nbytes
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes
        return value


class LabeledSource:
    """A sequence with ground truth; frames with a finite, positive, present box are usable."""

    labeled = True

    def __init__(self, seq: Sequence) -> None:
        gt = np.asarray(seq.gt, dtype=np.float64)
        usable = np.isfinite(gt).all(axis=1) & (np.nan_to_num(gt[:, 2]) > 0) & (np.nan_to_num(gt[:, 3]) > 0)
        absent = getattr(seq, "absent", None)
        if absent is not None:
            usable &= ~np.asarray(absent, dtype=bool)
        self.seq = seq
        self.name = seq.name
        self.usable = usable
        self.valid = np.flatnonzero(usable)
        if len(self.valid) == 0:
            raise DataError(f"sequence '{seq.name}' has no frame with a usable box")
        self.decoded = getattr(seq, "arrays", None) is None  # frames cost a decode (worth caching)

    def __len__(self) -> int:
        return len(self.seq)

    def frame(self, index: int) -> np.ndarray:
        return self.seq.frame(index)

    def box(self, index: int) -> np.ndarray:
        """``(cx, cy, w, h)`` of frame ``index`` (pixel-index centre)."""
        return xywh_to_cxcywh(self.seq.gt[index])


class VideoSource:
    """Frames without ground truth: a video file or a folder of images (``<dir>/img/`` or ``<dir>/``).

    A video of at most ``preload_frames`` frames is decoded once, here, and kept as JPEG (``preload_quality``,
    4:4:4; about 1 grey level of error) for fast random access. A longer one is read with one capture per
    process (never one inherited through ``fork``), decoding forward for small steps and seeking otherwise.
    """

    labeled = False
    decoded = True

    def __init__(self, path: str | os.PathLike, preload_frames: int = 2000, preload_quality: int = 95) -> None:
        if str(path).isdigit():
            raise DataError(f"a camera ({path}) cannot be a training source; give a video file or a folder")
        source = open_source(str(path))
        self.path, self.name = str(path), source.name
        self.files: tuple[str, ...] = ()
        self.store: tuple[np.ndarray, ...] = ()
        if source.kind == "folder":
            folder = Path(path) / "img" if (Path(path) / "img").is_dir() else Path(path)
            self.files = tuple(str(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES)
            count = len(self.files)
        elif (source.count or 0) <= preload_frames:
            self.store = self._preload(int(preload_quality))
            count = len(self.store)
        else:
            count = source.count or 0
        if count < 1:
            raise DataError(f"cannot tell how many frames {path} has")
        self.count = count
        self._cap: cv2.VideoCapture | None = None
        self._owner, self._pos = -1, -1

    def __len__(self) -> int:
        return self.count

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cap": None, "_owner": -1, "_pos": -1}

    def _preload(self, quality: int) -> tuple[np.ndarray, ...]:
        cap = cv2.VideoCapture(self.path)
        frames = []
        try:
            while True:
                ok, image = cap.read()
                if not ok:
                    break
                ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality,
                                                       cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                                                       cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
                frames.append(buf)
        finally:
            cap.release()
        return tuple(frames)

    def frame(self, index: int) -> np.ndarray:
        if not 0 <= index < self.count:
            raise IndexError(f"frame {index} out of range for '{self.name}' ({self.count} frames)")
        if self.files or self.store:
            image = cv2.imread(self.files[index], cv2.IMREAD_COLOR) if self.files \
                else cv2.imdecode(self.store[index], cv2.IMREAD_COLOR)
            if image is None:
                raise DataError(f"cannot decode frame {index} of {self.path}")
            return image
        return self._read(index)

    def _read(self, index: int) -> np.ndarray:
        if self._cap is None or self._owner != os.getpid():
            self._cap = cv2.VideoCapture(self.path)
            self._owner, self._pos = os.getpid(), -1
            if not self._cap.isOpened():
                raise DataError(f"cannot open video {self.path}")
        if not self._pos < index <= self._pos + READ_AHEAD:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            self._pos = index - 1
        while self._pos < index:
            if not self._cap.grab():
                self._pos = -2  # unknown position: seek next time
                raise DataError(f"{self.path}: cannot read frame {index} (the file reports {self.count} frames)")
            self._pos += 1
        ok, image = self._cap.retrieve()
        if not ok or image is None:
            raise DataError(f"{self.path}: cannot decode frame {index}")
        return image


def as_source(obj: Any) -> LabeledSource | VideoSource:
    """A :class:`Sequence` becomes a labeled source; a path (video file or image folder) an unlabeled one."""
    if isinstance(obj, (LabeledSource, VideoSource)):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return VideoSource(obj)
    if hasattr(obj, "gt") and hasattr(obj, "frame") and hasattr(obj, "name"):
        return LabeledSource(obj)
    raise DataError(f"cannot sample pairs from {type(obj).__name__}: give a Sequence or a video/folder path")
