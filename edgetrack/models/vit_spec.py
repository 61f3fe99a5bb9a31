"""Specs of the one-stream ViT family (no torch): OpenCV zoo VitTrack's architecture and tracking constants.

VitTrack (OpenCV zoo, ``object_tracking_vittrack_2023sep.onnx``, Apache-2.0): template 128 px, search 256 px,
a 4-conv patch embedding of stride 16 (8x8 template and 16x16 search tokens), 3 transformer blocks of width 48
with one attention head, and a centre head of three 4-conv branches (score, size, offset maps, 16x16).

Tracking constants as OpenCV's ``TrackerVit`` uses them: template crop ``2 * sqrt(w * h)`` wide, search crop
twice that, ImageNet mean/std on 0-255 pixels fed in OpenCV's BGR order, the score map multiplied by a Hann
window (``window_influence`` 1), no size smoothing (``lr`` 1), no move below a windowed score of 0.2
(``lost_threshold``).
"""
from __future__ import annotations

import copy
from typing import Any

from ..spec import TrackerSpec

VITTRACK_ARCH: dict[str, Any] = dict(width=48, depth=3, heads=1, mlp_ratio=4, embed_channels=[6, 12, 24, 48],
                                     head_channels=[32, 16, 8, 4])
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def vittrack_arch() -> dict[str, Any]:
    """The architecture dict of OpenCV zoo's VitTrack."""
    return copy.deepcopy(VITTRACK_ARCH)


def vit_spec(arch: dict[str, Any] | None = None, exemplar_size: int = 128, instance_size: int = 256,
             **overrides: Any) -> TrackerSpec:
    """A vit-family spec: VitTrack's constants, with sizes and grids derived from ``arch`` and the crop sizes."""
    arch = vittrack_arch() if arch is None else copy.deepcopy(arch)
    stride = 2 ** len(arch["embed_channels"])
    values: dict[str, Any] = dict(
        family="vit", name="vittrack", arch=arch, exemplar_size=exemplar_size, instance_size=instance_size,
        stride=stride, score_size=instance_size // stride, template_feat_size=exemplar_size // stride,
        context_amount=0.0, template_factor=2.0, mean=IMAGENET_MEAN, std=IMAGENET_STD, channel_order="BGR",
        score_activation="sigmoid", window_influence=1.0, penalty_k=0.0, lr=1.0, lost_threshold=0.2)
    values.update(overrides)
    return TrackerSpec(**values)
