"""The edgetrack runtime: numpy + OpenCV + one inference library. Never imports torch unless asked to run
the torch backend."""
from __future__ import annotations

from .confidence import Recovery, State
from .model_files import ModelFiles, locate
from .registry import list_models
from .tracker import Tracker, TrackResult

__all__ = ["ModelFiles", "Recovery", "State", "TrackResult", "Tracker", "list_models", "locate"]
