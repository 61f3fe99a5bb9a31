"""Frames of one video file, decoded on demand with OpenCV: forward reads decode forward, other jumps seek.

Every problem (a file OpenCV cannot open, a frame count it cannot honour, a frame it cannot decode) raises
:class:`edgetrack.errors.DataError` naming the file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgetrack.errors import DataError

#: File suffixes read as videos (anything else OpenCV's FFmpeg backend opens works when named explicitly).
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
#: A read this many frames ahead of the last one decodes forward; a longer or backward jump seeks.
READ_AHEAD = 32


def is_video_file(path: str | os.PathLike) -> bool:
    """True for a file whose suffix is one of :data:`VIDEO_SUFFIXES` (hidden files excluded)."""
    p = Path(path)
    return p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".") and p.is_file()


def _open_capture(path: str) -> cv2.VideoCapture:
    """A capture decoding on one thread (a decoder running ahead on other cores would disturb timings)."""
    try:
        cap = cv2.VideoCapture(path, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
    except cv2.error:  # a backend that refuses the parameter
        cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        cap.release()
        raise DataError(f"{path}: cannot open the video (missing, corrupt, or a codec OpenCV cannot decode)")
    return cap


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` found: frame count, frame size (pixels) and frame rate (0 when unknown)."""

    frames: int
    width: int
    height: int
    fps: float


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Open ``path``, decode its first frame and check that its last reported frame can be reached.

    A truncated file typically still reports its full frame count; seeking to the last frame exposes it.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise DataError(f"video file not found: {path}")
    cap = _open_capture(path)
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if count <= 0:
            raise DataError(f"{path}: the video reports no frames (corrupt or a stream without an index)")
        ok, first = cap.read()
        if not ok or first is None:
            raise DataError(f"{path}: cannot decode the first frame (corrupt video?)")
        if count > 1:
            cap.set(cv2.CAP_PROP_POS_FRAMES, count - 1)
            if not cap.grab():
                raise DataError(
                    f"{path}: the video reports {count} frames but frame {count} cannot be read "
                    "(truncated or corrupt file)"
                )
    finally:
        cap.release()
    return VideoInfo(count, int(first.shape[1]), int(first.shape[0]), fps if np.isfinite(fps) else 0.0)


class VideoFrames:
    """Random access to the frames of one video (BGR uint8 HxWx3).

    Sequential reads decode forward without seeking; a backward jump or one of more than :data:`READ_AHEAD`
    frames seeks. The capture is opened on first use, once per process (a pickled copy arrives without one),
    and released after the last frame has been read.
    """

    def __init__(self, path: str | os.PathLike, info: VideoInfo | None = None) -> None:
        self.path = str(path)
        self.info = info if info is not None else probe_video(self.path)
        self._cap: cv2.VideoCapture | None = None
        self._owner, self._pos = -1, -1

    def __len__(self) -> int:
        return self.info.frames

    def __repr__(self) -> str:
        return f"VideoFrames({self.path!r}, frames={len(self)})"

    def __getstate__(self) -> dict:
        return {"path": self.path, "info": self.info}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["info"])

    def close(self) -> None:
        """Release the capture (the next read opens a new one)."""
        if self._cap is not None and self._owner == os.getpid():
            self._cap.release()
        self._cap, self._owner, self._pos = None, -1, -1

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based; negative counts from the end)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"frame {index} out of range for {self.path} ({n} frames)")
        index %= n
        if self._cap is None or self._owner != os.getpid():
            self._cap, self._owner, self._pos = _open_capture(self.path), os.getpid(), -1
        if not self._pos < index <= self._pos + READ_AHEAD:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            self._pos = index - 1
        while self._pos < index:
            if not self._cap.grab():
                self.close()
                raise DataError(f"{self.path}: cannot read frame {index + 1} of {n} (truncated or corrupt video)")
            self._pos += 1
        ok, image = self._cap.retrieve()
        if not ok or image is None:
            self.close()
            raise DataError(f"{self.path}: cannot decode frame {index + 1} of {n} (corrupt video)")
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if index == n - 1:
            self.close()
        return image
