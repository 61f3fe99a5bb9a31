"""Specs of known trackers: the authors' NanoTrack V1/V2/V3 (architecture + their tracking constants)."""
from __future__ import annotations

import copy
from typing import Any

from .errors import SpecError
from .spec import TrackerSpec

# MobileNetV3-small rows: [kernel, hidden, out, use_se, use_hswish, stride]; strides give an output stride of 16.
_V12_BLOCKS = [[3, 16, 16, 1, 0, 2], [3, 72, 24, 0, 0, 2], [3, 88, 24, 0, 0, 1], [5, 96, 40, 1, 1, 2],
               [5, 240, 40, 1, 1, 1], [5, 240, 40, 1, 1, 1], [5, 120, 48, 1, 1, 1], [5, 144, 48, 1, 1, 1]]
_ARCHS: dict[int, dict[str, Any]] = {
    1: dict(stem=16, blocks=_V12_BLOCKS, corr_adapt=False, corr_post=False, dw_corr=False,
            tower_style="pw_bn_act", cls_tower=[[5, 128], [5, 128], [3, 128]],
            reg_tower=[[3, 96], [3, 96], [5, 96], [5, 96]]),
    2: dict(stem=16, blocks=_V12_BLOCKS, corr_adapt=True, corr_post=False, dw_corr=False,
            tower_style="pw_bn_act", cls_tower=[[3, 96]] * 6, reg_tower=[[3, 96]] * 6),
    3: dict(stem=16, blocks=_V12_BLOCKS + [[5, 288, 96, 1, 1, 1]], corr_adapt=True, corr_post=True,
            dw_corr=True, dw_crop=4, down_channels=96, tower_style="dw_bn_act",
            cls_tower=[[3, 96]] * 6, reg_tower=[[3, 96]] * 6),
}
# Tracking constants from the authors' configs (configs/configv{1,2,3}.yaml, TRACK section).
_TRACK = {
    1: dict(window_influence=0.462, penalty_k=0.148, lr=0.390, score_size=16),
    2: dict(window_influence=0.490, penalty_k=0.150, lr=0.385, score_size=16),
    3: dict(window_influence=0.455, penalty_k=0.138, lr=0.348, score_size=15),
}


def nanotrack_arch(version: int) -> dict[str, Any]:
    """The architecture dict of the authors' NanoTrack V1, V2 or V3."""
    if version not in _ARCHS:
        raise SpecError(f"unknown NanoTrack version {version!r}; expected 1, 2 or 3")
    return copy.deepcopy(_ARCHS[version])


def nanotrack_spec(version: int, **overrides: Any) -> TrackerSpec:
    """The full spec of NanoTrack V1/V2/V3: exemplar 127, instance 255, context 0.5, stride 16, raw BGR 0-255."""
    values: dict[str, Any] = dict(family="nanotrack", name=f"nanotrack-v{version}", arch=nanotrack_arch(version),
                                  exemplar_size=127, instance_size=255, context_amount=0.5, stride=16,
                                  template_feat_size=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                                  channel_order="BGR", score_activation="softmax")
    values.update(_TRACK[version])
    values.update(overrides)
    return TrackerSpec(**values)
