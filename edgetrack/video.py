"""Reading frame sources and writing annotated videos (OpenCV only).

Sources: a video file; a folder of images in natural frame order (``2.jpg`` before ``10.jpg``); a camera index
(``"0"``, ``"1"``...); a stream URL (``rtsp://``, ``http(s)://``, ``udp://``... passed to OpenCV untouched, never
treated as a path); or a GStreamer pipeline (a string with ``" ! "`` in it, opened with ``CAP_GSTREAMER``).
Cameras and streams are *live*: :mod:`edgetrack.live` reads them in real time.
"""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import DataError, InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Containers the annotated video may use, with the codec written into each (OpenCV's FFmpeg backend).
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG", ".webm": "VP80"}
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
LIVE_KINDS = ("camera", "stream")


@dataclass(frozen=True)
class Source:
    """An opened frame source: iterate ``frames()``; ``count`` is None for cameras and streams."""

    name: str
    fps: float
    count: int | None
    kind: str  # "video", "folder", "camera" or "stream"
    _path: str | int
    api: int = cv2.CAP_ANY

    @property
    def live(self) -> bool:
        return self.kind in LIVE_KINDS

    def capture(self) -> cv2.VideoCapture:
        """A fresh ``cv2.VideoCapture`` on this source (not for folders)."""
        cap = cv2.VideoCapture(self._path, self.api)
        if not cap.isOpened():
            raise DataError(f"cannot open {self.kind} {self.name}")
        return cap

    def frames(self) -> Iterator[np.ndarray]:
        if self.kind == "folder":
            for path in _folder_images(Path(self._path)):
                frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if frame is None:
                    raise DataError(f"cannot decode image {path}")
                yield frame
            return
        cap = self.capture()
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield frame
        finally:
            cap.release()


def natural_key(name: str) -> tuple:
    """Sort key that orders runs of digits by value: ``1.jpg, 2.jpg, 10.jpg`` (not ``1, 10, 2``)."""
    return tuple((0, int(part), part) if part.isdigit() else (1, 0, part.lower())
                 for part in re.split(r"(\d+)", name) if part)


def _folder_images(folder: Path) -> list[Path]:
    images = (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return sorted(images, key=lambda p: natural_key(p.name))


def is_stream(text: str) -> bool:
    """Whether ``text`` names a stream (a URL or a GStreamer pipeline) rather than a file path."""
    return bool(_URL.match(text)) or " ! " in text


def _open_live(target: str | int, kind: str, name: str, api: int = cv2.CAP_ANY) -> Source:
    cap = cv2.VideoCapture(target, api)
    if not cap.isOpened():
        hint = (" (is OpenCV built with GStreamer? cv2.getBuildInformation() tells)" if api == cv2.CAP_GSTREAMER
                else "")
        raise InputError(f"cannot open {kind} {name}{hint}")
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return Source(name, float(fps) if fps and 0 < fps < 1000 else 30.0, None, kind, target, api)


def open_source(source: str | int) -> Source:
    """Open a video file, an image folder (natural order), a camera index, a stream URL or a GStreamer pipeline."""
    text = str(source).strip()
    if isinstance(source, int) or text.isdigit():
        return _open_live(int(text), "camera", f"camera{text}")
    if " ! " in text:
        return _open_live(text, "stream", "gstreamer-pipeline", cv2.CAP_GSTREAMER)
    if _URL.match(text):
        return _open_live(text, "stream", re.sub(r"//[^/@]*@", "//", text))  # no credentials in names
    path = Path(text).expanduser()
    try:
        found = path.exists()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise DataError(f"source not found: {text[:200]!r} ({exc.strerror or exc})") from exc
    if not found:
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


def _fourcc(path: Path) -> int:
    suffix = path.suffix.lower()
    if suffix not in VIDEO_CODECS:
        raise InputError(f"cannot write a video to {path}: {suffix or 'no suffix'} is not a video container this "
                         f"OpenCV writes; use one of {', '.join(VIDEO_CODECS)}")
    return cv2.VideoWriter_fourcc(*VIDEO_CODECS[suffix])


def check_video_out(out: str | os.PathLike) -> Path:
    """Check before any work that an annotated video can be written to ``out``: a known container whose codec
    this OpenCV build can encode, probed on a tiny hidden file written (and removed) beside ``out``."""
    path = Path(out)
    fourcc = _fourcc(path)
    if path.is_dir():
        raise InputError(f"--out {path} is a folder; give a video file name such as {path / 'tracked.mp4'}")
    check_writable_file(path, "--out")
    probe = _hidden_temp(path, "probe")
    try:
        writer = cv2.VideoWriter(str(probe), fourcc, 10.0, (64, 48))
        ok = writer.isOpened()
        if ok:
            writer.write(np.zeros((48, 64, 3), np.uint8))
        writer.release()
        if not ok or probe.stat().st_size == 0:
            raise InputError(f"this OpenCV build cannot encode {path.suffix} video; use .mp4 or .avi")
    finally:
        probe.unlink(missing_ok=True)
    return path


def check_writable_file(path: str | os.PathLike, what: str) -> Path:
    """InputError unless a file can be written at ``path``, tried for real: a probe file is created and removed
    in its folder (``os.access`` says yes to root everywhere, ``/proc`` included). The folder must exist: no
    folder is created for an output file, so a mistyped path fails here, before any work."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, not a file")
    parent = path.parent
    if not parent.is_dir():
        state = "is a file, not a folder" if parent.exists() else "does not exist (create it first)"
        raise InputError(f"{what} {path}: cannot write into {parent}: it {state}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgetrack-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot write into {parent} ({exc.strerror or exc})") from exc
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{what} {path} exists and is not writable")
    return path


def _hidden_temp(path: Path, kind: str) -> Path:
    """A new empty hidden file beside ``path`` with its suffix (the same file system, so it moves in with a
    rename); short whatever ``path``'s name is."""
    fd, tmp = tempfile.mkstemp(prefix=f".edgetrack-{kind}-", suffix=path.suffix.lower(), dir=path.parent)
    os.close(fd)
    return Path(tmp)


class AnnotatedWriter:
    """Writes frames to a hidden temporary file beside the target and renames it into place on ``close()``: no
    half-written output. The temporary file is removed on every way out (a failed rename, an error, Ctrl+C,
    SIGTERM through the commands' handler); only a hard kill (SIGKILL, power loss) can leave it, hidden."""

    def __init__(self, out: str | os.PathLike, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(out)
        fourcc = _fourcc(self.path)
        if not self.path.parent.is_dir():
            raise InputError(f"cannot write {self.path}: the folder {self.path.parent} does not exist (create it "
                             "first)")
        self.frames = 0
        self._tmp = _hidden_temp(self.path, "video")
        try:
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, fps, size)
            if not self._writer.isOpened():
                raise InputError(f"OpenCV cannot write {self.path.suffix} video to {self.path}")
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> Path:
        try:
            self._writer.release()
            os.chmod(self._tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
            os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        self._writer.release()
        self._tmp.unlink(missing_ok=True)


def draw_box(frame: np.ndarray, box, score: float | None = None, lost: bool = False,
             label: str = "", state: str | None = None) -> np.ndarray:
    """Draw an (x, y, w, h) box with its state and score on a copy of ``frame`` (red when lost, amber when
    uncertain, green otherwise)."""
    out = frame.copy()
    x, y, w, h = (int(round(v)) for v in box)
    state_text = (state or ("LOST" if lost else "")).upper()
    colour = {"LOST": (0, 0, 255), "UNCERTAIN": (0, 191, 255)}.get(state_text, (0, 220, 0))
    cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
    parts = [label, state_text, "" if score is None else f"{score:.2f}"]
    text = " ".join(p for p in parts if p)
    if text:
        cv2.putText(out, text, (max(x, 0), max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return out
