"""Exporting trained trackers to deployable files (needs ``edgetrack[export]``: torch, onnx, onnxslim).

``edgetrack-export`` (:mod:`.cli`) drives :func:`.pipeline.run_export`: FP32 ONNX graphs (:func:`export_onnx`),
ONNX Runtime INT8 (:mod:`.onnx_quant`), OpenVINO IR (:mod:`.openvino_export`, needs ``edgetrack[openvino]``),
TensorRT engines (:mod:`.tensorrt_export`, needs ``edgetrack[tensorrt]``), calibration pairs
(:mod:`.calibration`) and the accuracy gate (:mod:`.gate`). The formats and their rules are in :mod:`.formats`.
"""
from __future__ import annotations

from importlib import import_module

# Imported on first use, so a torch-free machine (a Jetson building engines) can still import the TensorRT
# and calibration modules of this package.
_LAZY = {"CalibrationSet": ".calibration", "build_calibration_set": ".calibration", "FORMATS": ".formats",
         "ExportFormat": ".formats", "export_onnx": ".onnx_export"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_LAZY[name], __name__), name)
