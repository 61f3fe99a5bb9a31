"""Run edgetrack trackers inside other toolkits: got10k (``ExperimentOTB(...).run(tracker)``) and pysot.

got10k's tracker base class is created on first use, so importing this module does not need got10k::

    from edgetrack import Tracker
    from edgetrack.evaluation.adapters import as_got10k, PysotTracker
    ExperimentDTB70(root).run(as_got10k(Tracker(), name="edgetrack"))
    pysot_style = PysotTracker(Tracker())            # init(img, bbox), track(img) -> {"bbox", "best_score"}
"""
from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from .trackers import TrackerFactory, read_prediction

_GOT10K_CLASS: type | None = None


def to_bgr(image: Any) -> np.ndarray:
    """A PIL image or RGB/RGBA/grey array as a contiguous BGR uint8 HxWx3 array."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_RGBA2BGR)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr[:, :, ::-1])
    raise ValueError(f"cannot use an image of shape {arr.shape}")


def _make(tracker_or_factory: Any) -> Any:
    return tracker_or_factory.build() if isinstance(tracker_or_factory, TrackerFactory) else tracker_or_factory


def got10k_tracker_class() -> type:
    """The ``got10k.trackers.Tracker`` subclass wrapping an edgetrack-style tracker (created once)."""
    global _GOT10K_CLASS
    if _GOT10K_CLASS is not None:
        return _GOT10K_CLASS
    from got10k.trackers import Tracker as Got10kBase

    class Got10kTracker(Got10kBase):
        """got10k tracker around any ``init(frame, box)`` / ``update(frame)`` tracker (BGR frames)."""

        def __init__(self, tracker: Any, name: str = "edgetrack", is_deterministic: bool = True) -> None:
            super().__init__(name=name, is_deterministic=is_deterministic)
            self.tracker = _make(tracker)
            self._box = (0.0, 0.0, 0.0, 0.0)

        def init(self, image, box) -> None:
            self._box = tuple(float(v) for v in box)
            self.tracker.init(to_bgr(image), self._box)

        def update(self, image) -> np.ndarray:
            pred = read_prediction(self.tracker.update(to_bgr(image)), self._box)
            self._box = pred.box
            return np.asarray(pred.box, dtype=np.float64)

    _GOT10K_CLASS = Got10kTracker
    return Got10kTracker


def as_got10k(tracker: Any, name: str = "edgetrack") -> Any:
    """Wrap a tracker (or a :class:`TrackerFactory`) as a got10k tracker named ``name``."""
    return got10k_tracker_class()(tracker, name=name)


class PysotTracker:
    """pysot-style interface: ``init(img, bbox)`` and ``track(img) -> {"bbox": [x,y,w,h], "best_score": s}``.

    ``img`` is a BGR array as ``cv2.imread`` returns it (pysot's convention).
    """

    def __init__(self, tracker: Any) -> None:
        self.tracker = _make(tracker)
        self._box = (0.0, 0.0, 0.0, 0.0)

    def init(self, img: np.ndarray, bbox) -> None:
        self._box = tuple(float(v) for v in bbox)
        self.tracker.init(img, self._box)

    def track(self, img: np.ndarray) -> dict:
        pred = read_prediction(self.tracker.update(img), self._box)
        self._box = pred.box
        score = pred.score if not math.isnan(pred.score) else 1.0
        return {"bbox": list(pred.box), "best_score": float(score)}


def __getattr__(name: str) -> Any:
    if name == "Got10kTracker":
        return got10k_tracker_class()
    raise AttributeError(name)
