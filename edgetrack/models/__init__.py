"""Torch networks of the Siamese families. Importing this package requires torch (``edgetrack[train]``)."""
from __future__ import annotations

from .registry import build_model, register_family

__all__ = ["build_model", "register_family"]
