"""edgetrack: single-object visual tracking for small machines.

``from edgetrack import Tracker`` gives the runtime (numpy + OpenCV + ONNX Runtime; no torch).
"""
from __future__ import annotations

from .errors import (
                     BackendUnavailableError,
                     BoxError,
                     DataError,
                     EdgeTrackError,
                     FrameError,
                     InputError,
                     ModelError,
                     ModelNotFoundError,
                     SpecError,
                     StateError,
)
from .runtime import Recovery, State, Tracker, TrackResult, list_models
from .runtime.multi import MultiTracker
from .spec import TrackerSpec

__version__ = "0.1.0"

__all__ = ["BackendUnavailableError", "BoxError", "DataError", "EdgeTrackError", "FrameError", "InputError",
           "ModelError", "ModelNotFoundError", "MultiTracker", "Recovery", "SpecError", "State", "StateError",
           "TrackResult", "Tracker", "TrackerSpec", "__version__", "list_models"]
