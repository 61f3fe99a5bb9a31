"""Inference backends behind :class:`edgetrack.Tracker`. Each vendor library is imported only in its module."""
from __future__ import annotations

from .base import BACKENDS, Backend, open_backend

__all__ = ["BACKENDS", "Backend", "open_backend"]
