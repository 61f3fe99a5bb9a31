"""Live sources in real time, and the optional OpenCV window (OpenCV only).

:class:`LatestFrames` reads a camera or stream on a background thread and hands out only the newest frame: when
tracking falls behind, older frames are dropped (counted in ``dropped``) instead of piling up in a buffer, so
boxes stay current. ``--show`` and interactive box selection need an OpenCV build with a GUI and a display; the
default dependency is the headless build, and :func:`require_gui` says what to install otherwise.
"""
from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator

import cv2
import numpy as np

from .errors import InputError
from .video import Source

GUI_HELP = ("the default edgetrack install has the headless OpenCV (no windows). For --show and box selection "
            "replace it with the GUI build, keeping a single OpenCV package in the environment: "
            "pip uninstall -y opencv-contrib-python-headless && pip install opencv-contrib-python")
WINDOW = "edgetrack"


class LatestFrames:
    """Iterate the newest frame of a live source; ``dropped`` counts frames read but never handed out."""

    def __init__(self, source: Source, timeout_s: float = 10.0) -> None:
        self._cap = source.capture()
        self._timeout = timeout_s
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._ended = False
        self.read = 0
        self.delivered = 0
        self._thread = threading.Thread(target=self._grab, name="edgetrack-grabber", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        with self._cond:
            return self.read - self.delivered - (1 if self._frame is not None else 0)

    def _grab(self) -> None:
        try:
            while not self._ended:
                ok, frame = self._cap.read()
                with self._cond:
                    if not ok:
                        break
                    self._frame = frame
                    self.read += 1
                    self._cond.notify()
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()
            self._cap.release()  # only this thread touches the capture: never released under a read

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: self._frame is not None or self._ended, self._timeout):
                    return  # the source stopped sending
                if self._frame is None:
                    return
                frame, self._frame = self._frame, None
                self.delivered += 1
            yield frame

    def close(self) -> None:
        """Stop reading; the grabber releases the capture after its current read (a blocked stream read is
        left to finish in the background rather than freed under it)."""
        with self._cond:
            self._ended = True
        self._thread.join(timeout=2.0)


def gui_problem() -> str | None:
    """Why no OpenCV window can open here (None when one can)."""
    info = cv2.getBuildInformation()
    section = info[info.find("GUI:"):][:200] if "GUI:" in info else ""
    if "GUI:" in info and section.split("\n", 1)[0].split(":", 1)[1].strip().upper() in ("NONE", "NO", ""):
        return "this OpenCV build has no GUI (it is the headless build)"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY/WAYLAND_DISPLAY is not set)"
    return None


def require_gui(what: str) -> None:
    """InputError saying what to install (or that a display is missing) when no window can open."""
    problem = gui_problem()
    if problem is None:
        return
    if "headless" in problem:
        raise InputError(f"{what} needs an OpenCV window, but {problem}; {GUI_HELP}")
    raise InputError(f"{what} needs an OpenCV window, but there is {problem}; run it on a desktop session or "
                     "with X forwarding, or pass --bbox and drop --show")


def select_box(frame: np.ndarray) -> tuple[float, float, float, float]:
    """Let the user drag the target's box on ``frame`` (Enter/Space to accept, c to cancel)."""
    require_gui("selecting the box interactively (no --bbox)")
    x, y, w, h = cv2.selectROI(f"{WINDOW}: drag a box around the target, then Enter", frame, True, False)
    cv2.destroyAllWindows()
    if w <= 0 or h <= 0:
        raise InputError("no box selected; drag a box around the target and press Enter, or pass --bbox x,y,w,h")
    return float(x), float(y), float(w), float(h)


def show(frame: np.ndarray) -> bool:
    """Show ``frame`` in the window; False when the user pressed q or Esc."""
    cv2.imshow(WINDOW, frame)
    return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)


def close_windows() -> None:
    cv2.destroyAllWindows()
