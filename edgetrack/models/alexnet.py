"""Width-parameterised AlexNet backbones of SiamFC and SiamRPN (output stride 8, no padding).

Five conv layers, base channels ``(96, 256, 384, 384, 256)`` scaled by ``width`` the way pysot does
(``int(c * width)``), so a teacher (``width=1``) and its distilled students (``0.25``, ``0.5``) come from
the same code:

====  ================================  =======================
conv  kernel / stride                   then
====  ================================  =======================
1     11 / 2                            BN, max-pool 3/2, ReLU
2     5 / 1 (``groups``)                BN, max-pool 3/2, ReLU
3     3 / 1                             BN, ReLU
4     3 / 1 (``groups``)                BN, ReLU
5     3 / 1 (``groups``)                BN if ``last_bn``
====  ================================  =======================

An exemplar of 127 gives a 6x6 map, a 255 search crop 22x22 (:func:`alexnet_feature_size`).

``layout`` only chooses the module names, so checkpoints of the reference implementations load unchanged:

* ``"features"`` -- one ``features`` Sequential, parameters at ``features.{0,1,4,5,8,9,11,12,14,15}``:
  pysot's ``AlexNetLegacy`` (``siamrpn_alex_dwxcorr``) and DaSiamRPN's ``featureExtract``;
* ``"layers"`` -- ``layer1`` .. ``layer5``, each ``[conv, bn, ...]``: pysot's ``AlexNet``;
* ``"convs"`` -- ``conv1`` .. ``conv5``, each ``[conv, bn, ...]``: siamfc-pytorch's ``AlexNetV1``.

Inside a block the order is conv, BN, max-pool, ReLU (pysot). siamfc-pytorch applies ReLU before the
max-pool; both orders compute the same values (ReLU is monotonic) and put the parameters at the same indices.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import nn

from ..errors import SpecError
from ..spec import TrackerSpec

BASE_CHANNELS = (96, 256, 384, 384, 256)
LAYOUTS = ("features", "layers", "convs")


@dataclass(frozen=True)
class AlexNetConfig:
    """Architecture of one AlexNet backbone.

    ``groups`` applies to conv2, conv4 and conv5 (2 in the original AlexNet and SiamFC, 1 in pysot).
    ``bn_eps``/``bn_momentum`` are BatchNorm constants (siamfc-pytorch uses 1e-6 / 0.05).
    """

    width: float = 1.0
    groups: int = 1
    last_bn: bool = True
    layout: str = "features"
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise SpecError(f"unknown AlexNet layout {self.layout!r}; expected one of {LAYOUTS}")
        if not isinstance(self.groups, int) or self.groups < 1:
            raise SpecError(f"AlexNet groups must be a positive integer, got {self.groups!r}")
        if not isinstance(self.width, (int, float)) or isinstance(self.width, bool) or self.width <= 0:
            raise SpecError(f"AlexNet width must be a positive number, got {self.width!r}")
        for c in self.channels:
            if c < self.groups or c % self.groups:
                raise SpecError(f"AlexNet width {self.width} gives channels {self.channels}, "
                                f"not all divisible by groups={self.groups}")

    @property
    def channels(self) -> tuple[int, int, int, int, int]:
        """Output channels of conv1..conv5 (pysot's rounding: ``int(c * width)``)."""
        return tuple(int(c * self.width) for c in BASE_CHANNELS)  # type: ignore[return-value]


def alexnet_feature_size(input_size: int) -> int:
    """Side of the backbone output for a square input of ``input_size`` pixels (127 -> 6, 255 -> 22)."""
    size = (input_size - 11) // 2 + 1  # conv1
    size = (size - 3) // 2 + 1  # pool1
    size = size - 4  # conv2
    size = (size - 3) // 2 + 1  # pool2
    return size - 6  # conv3, conv4, conv5


def _blocks(cfg: AlexNetConfig) -> list[list[nn.Module]]:
    """The five blocks of layers, in pysot order."""
    c1, c2, c3, c4, c5 = cfg.channels
    g = cfg.groups

    def bn(c: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(c, eps=cfg.bn_eps, momentum=cfg.bn_momentum)

    last = [nn.Conv2d(c4, c5, 3, groups=g)] + ([bn(c5)] if cfg.last_bn else [])
    return [
        [nn.Conv2d(3, c1, 11, stride=2), bn(c1), nn.MaxPool2d(3, 2), nn.ReLU()],
        [nn.Conv2d(c1, c2, 5, groups=g), bn(c2), nn.MaxPool2d(3, 2), nn.ReLU()],
        [nn.Conv2d(c2, c3, 3), bn(c3), nn.ReLU()],
        [nn.Conv2d(c3, c4, 3, groups=g), bn(c4), nn.ReLU()],
        last,
    ]


class AlexNet(nn.Module):
    """AlexNet feature extractor ``(B, 3, S, S) -> (B, C5, s, s)`` with ``s = alexnet_feature_size(S)``."""

    def __init__(self, cfg: AlexNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        blocks = _blocks(cfg)
        if cfg.layout == "features":
            self.features = nn.Sequential(*[m for block in blocks for m in block])
            self._block_names: tuple[str, ...] = ("features",)
        else:
            prefix = "layer" if cfg.layout == "layers" else "conv"
            self._block_names = tuple(f"{prefix}{i + 1}" for i in range(len(blocks)))
            for name, block in zip(self._block_names, blocks):
                self.add_module(name, nn.Sequential(*block))
        init_weights(self)

    @property
    def out_channels(self) -> int:
        return self.cfg.channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self._block_names:
            x = getattr(self, name)(x)
        return x


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal convolutions (fan-out, ReLU) with zero bias; BatchNorm at identity."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def split_arch(arch: dict[str, Any], family: str, backbone: AlexNetConfig,
               head: dict[str, Any]) -> tuple[AlexNetConfig, dict[str, Any]]:
    """Split a flat ``spec.arch`` into the backbone config and the head arguments.

    ``backbone`` and ``head`` hold the defaults of keys the arch leaves out. Unknown keys raise
    :class:`SpecError` naming the known ones.
    """
    backbone_keys = {f.name for f in fields(AlexNetConfig)}
    unknown = sorted(set(arch) - backbone_keys - set(head))
    if unknown:
        raise SpecError(f"{family} arch has unknown keys {unknown}; known keys are "
                        f"{sorted(backbone_keys | set(head))}")
    cfg = replace(backbone, **{k: v for k, v in arch.items() if k in backbone_keys})
    return cfg, {**head, **{k: v for k, v in arch.items() if k in head}}


def check_spec_sizes(spec: TrackerSpec) -> None:
    """Raise :class:`SpecError` unless the spec's feature and score sizes are what an AlexNet model produces.

    SiamFC's correlation and both SiamRPN heads give ``score = feat(instance) - feat(exemplar) + 1``.
    """
    feat_z = alexnet_feature_size(spec.exemplar_size)
    score = alexnet_feature_size(spec.instance_size) - feat_z + 1
    if spec.template_feat_size != feat_z or spec.score_size != score:
        raise SpecError(
            f"{spec.family} with exemplar {spec.exemplar_size} / instance {spec.instance_size} gives template "
            f"features {feat_z} and score size {score}, but the spec says {spec.template_feat_size} and "
            f"{spec.score_size}")


def spec_with_sizes(values: dict[str, Any]) -> TrackerSpec:
    """Build a spec, filling ``template_feat_size``/``score_size`` from the crop sizes unless given."""
    feat_z = alexnet_feature_size(values["exemplar_size"])
    values = {"template_feat_size": feat_z,
              "score_size": alexnet_feature_size(values["instance_size"]) - feat_z + 1, **values}
    return TrackerSpec(**values)
