"""Reading frame sources (video file, image folder, camera) and writing annotated videos (OpenCV only)."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import DataError, InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Source:
    """An opened frame source: iterate ``frames()``; ``count`` is None for cameras."""

    name: str
    fps: float
    count: int | None
    kind: str
    _path: str | int

    def frames(self) -> Iterator[np.ndarray]:
        if self.kind == "folder":
            for path in _folder_images(Path(self._path)):
                frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if frame is None:
                    raise DataError(f"cannot decode image {path}")
                yield frame
            return
        cap = cv2.VideoCapture(self._path)
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield frame
        finally:
            cap.release()


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def open_source(source: str | int) -> Source:
    """Open a video file, an image folder (sorted by name) or a camera index ("0", "1"...)."""
    text = str(source)
    if text.isdigit():
        cap = cv2.VideoCapture(int(text))
        if not cap.isOpened():
            raise InputError(f"cannot open camera {text}")
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        cap.release()
        return Source(f"camera{text}", fps, None, "camera", int(text))
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(f"source not found: {path}")
    if path.is_dir():
        images = _folder_images(path / "img" if (path / "img").is_dir() else path)
        if not images:
            raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
        return Source(path.name, 30.0, len(images), "folder", str(images[0].parent))
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"cannot open video {path} (unsupported or corrupt file)")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    cap.release()
    return Source(path.stem, float(fps), count, "video", str(path))


class AnnotatedWriter:
    """Writes frames to a temporary file and moves it into place on ``close()`` (no half-written outputs)."""

    def __init__(self, out: str | os.PathLike, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(out)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = self.path.suffix.lower() or ".mp4"
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if suffix == ".avi" else "mp4v"))
        fd, self._tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=self.path.parent)
        os.close(fd)
        self._writer = cv2.VideoWriter(self._tmp, fourcc, fps, size)
        if not self._writer.isOpened():
            os.unlink(self._tmp)
            raise InputError(f"OpenCV cannot write {suffix} video to {self.path}")

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)

    def close(self) -> Path:
        self._writer.release()
        os.chmod(self._tmp, 0o644)
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._writer.release()
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)


def draw_box(frame: np.ndarray, box, score: float | None = None, lost: bool = False,
             label: str = "") -> np.ndarray:
    """Draw an (x, y, w, h) box with its score on a copy of ``frame``."""
    out = frame.copy()
    x, y, w, h = (int(round(v)) for v in box)
    colour = (0, 0, 255) if lost else (0, 220, 0)
    cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
    text = label if score is None else f"{label} {score:.2f}".strip()
    if text:
        cv2.putText(out, text, (max(x, 0), max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return out
