"""SiamFC (Bertinetto et al. 2016): an AlexNet embedding and a scaled cross-correlation response.

``template(z)`` returns the exemplar features ``zf`` (``(B, C, 6, 6)`` for a 127 crop); ``search(x, zf)``
returns the response map ``(B, 1, 17, 17)`` for a 255 crop: ``out_scale * xcorr(backbone(x), zf)``,
optionally followed by a ``BatchNorm2d(1)`` (``adjust="bn"``, the learned adjust of some SiamFC variants).
``zf`` may have batch 1 while ``x`` has several crops (SiamFC's scale pyramid) or the same batch as ``x``.

The default arch is siamfc-pytorch's ``AlexNetV1`` (grouped conv2/4/5, no BN after conv5, BN eps 1e-6) with
its module names, so a checkpoint of that implementation loads with :func:`load_siamfc_state_dict`.
"""
from __future__ import annotations

from os import PathLike
from typing import Any

import torch
from torch import nn

from ..errors import SpecError
from ..spec import TrackerSpec
from .alexnet import AlexNet, AlexNetConfig, check_spec_sizes, spec_with_sizes, split_arch
from .base import SiameseNet
from .correlation import xcorr_full
from .siamrpn import load_reference_state_dict

# siamfc-pytorch's AlexNetV1 (huanglianghua/siamfc-pytorch, siamfc/backbones.py).
_BACKBONE = AlexNetConfig(width=1.0, groups=2, last_bn=False, layout="convs", bn_eps=1e-6, bn_momentum=0.05)
_HEAD = {"out_scale": 0.001, "adjust": "none"}
ADJUSTS = ("none", "bn")


class SiamFCNet(SiameseNet):
    """SiamFC network built from a ``family="siamfc"`` spec (see :func:`siamfc_spec` for the arch keys)."""

    template_names = ("zf",)
    output_names = ("response",)

    def __init__(self, spec: TrackerSpec) -> None:
        super().__init__(spec)
        cfg, head = split_arch(dict(spec.arch), "siamfc", _BACKBONE, _HEAD)
        if head["adjust"] not in ADJUSTS:
            raise SpecError(f"siamfc adjust must be one of {ADJUSTS}, got {head['adjust']!r}")
        self.out_scale = float(head["out_scale"])
        self.backbone = AlexNet(cfg)
        self.bn_adjust = nn.BatchNorm2d(1) if head["adjust"] == "bn" else None
        check_spec_sizes(spec)

    def template(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.backbone(z),)

    def search(self, x: torch.Tensor, *zfs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(zfs) != 1:
            raise TypeError(f"SiamFCNet.search takes one template tensor, got {len(zfs)}")
        response = xcorr_full(self.backbone(x), zfs[0]) * self.out_scale
        if self.bn_adjust is not None:
            response = self.bn_adjust(response)
        return (response,)


def siamfc_spec(width: float = 1.0, **overrides: Any) -> TrackerSpec:
    """The SiamFC spec: siamfc-pytorch's network and tracking constants, the backbone scaled by ``width``.

    ``overrides`` replace spec fields; an ``arch`` override is merged into the default arch. Changing
    ``exemplar_size``/``instance_size`` recomputes ``template_feat_size``/``score_size`` unless given.
    """
    arch = {"width": width, "groups": _BACKBONE.groups, "last_bn": _BACKBONE.last_bn, "layout": _BACKBONE.layout,
            "bn_eps": _BACKBONE.bn_eps, "bn_momentum": _BACKBONE.bn_momentum, **_HEAD}
    arch.update(overrides.pop("arch", {}))
    values: dict[str, Any] = dict(
        family="siamfc", name="siamfc-alexnet" if width == 1.0 else f"siamfc-alexnet-w{width:g}", arch=arch,
        # Crop sizes, context, stride, response size, scale search and window: siamfc-pytorch
        # TrackerSiamFC.parse_args (the constants of Bertinetto et al.'s SiamFC-3s).
        exemplar_size=127, instance_size=255, context_amount=0.5, stride=8,
        scale_num=3, scale_step=1.0375, scale_penalty=0.9745, scale_lr=0.59,
        window_influence=0.176, response_up=16,
        # siamfc-pytorch feeds raw 0..255 RGB pixels (ops.read_image converts BGR to RGB), no normalisation.
        mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), channel_order="RGB",
        # One logit channel (trained with binary cross-entropy). SiamFC has no RPN size penalty and
        # updates the size with scale_lr, so penalty_k and lr are unused.
        score_activation="sigmoid", penalty_k=0.0, lr=0.0,
    )
    values.update(overrides)
    return spec_with_sizes(values)


def load_siamfc_state_dict(model: SiamFCNet, path_or_dict: str | PathLike | dict, *,
                           trusted: bool = False) -> SiamFCNet:
    """Load a siamfc-pytorch checkpoint (``backbone.convN...``) strictly; see :func:`load_pysot_state_dict`."""
    return load_reference_state_dict(model, path_or_dict, source="siamfc", trusted=trusted)
