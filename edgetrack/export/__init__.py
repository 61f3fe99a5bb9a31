"""Exporting trained trackers to deployable files (needs ``edgetrack[export]``: torch, onnx, onnxslim)."""
from __future__ import annotations

from .onnx_export import export_onnx

__all__ = ["export_onnx"]
