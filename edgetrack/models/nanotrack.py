"""The NanoTrack family: MobileNetV3-small-style backbone + anchor-free (BAN-style) head.

The head correlates template and search features pixel-wise (MatMul, exports with a dynamic batch and to any
TensorRT), re-weights the correlation channels (one per template position) with channel attention, and runs a
classification and a regression tower of depthwise-separable convolutions. NanoTrack V3 adds a depthwise
correlation branch on the centre of the template; it is written as shifted multiply-adds, again without a
dynamic-kernel Conv. Every size and width comes from ``spec.arch`` so students share this code.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..spec import TrackerSpec
from .base import SiameseNet
from .blocks import MobileNetV3Features, conv_bn, separable_tower
from .correlation import xcorr_depthwise


class ChannelAttention(nn.Module):
    """Squeeze-excite over correlation channels with 1x1 convs ``fc1``/``fc2`` and a sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels, 1)
        self.fc2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * w


def pixelwise_corr(zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
    """(B,C,Hz,Wz) x (B,C,Hx,Wx) -> (B, Hz*Wz, Hx, Wx): one channel per template position (MatMul)."""
    b, c, h, w = xf.shape
    out = torch.matmul(zf.flatten(2).transpose(1, 2), xf.flatten(2))
    return out.reshape(b, -1, h, w)


def depthwise_corr(zf: torch.Tensor, xf: torch.Tensor, pad: int) -> torch.Tensor:
    """Depthwise cross-correlation with zero padding (shift-and-add: no dynamic-kernel Conv in the graph)."""
    return xcorr_depthwise(nn.functional.pad(xf, (pad, pad, pad, pad)), zf)


class PixelCorr(nn.Module):
    """Optional 1x1 adapters, pixel-wise correlation, channel attention, optional post convs (V3)."""

    def __init__(self, channels: int, positions: int, adapt: bool, post: bool) -> None:
        super().__init__()
        if adapt:
            self.conv_kernel = conv_bn(channels, channels)
            self.conv_search = conv_bn(channels, channels)
        self.adapt = adapt
        self.CA_layer = ChannelAttention(positions)
        if post:
            self.conv = nn.Sequential(
                nn.Conv2d(positions, positions, 2, groups=positions, bias=False), nn.BatchNorm2d(positions),
                nn.ReLU6(inplace=True), nn.Conv2d(positions, positions, 1), nn.BatchNorm2d(positions))
        self.post = post

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        if self.adapt:
            zf, xf = self.conv_kernel(zf), self.conv_search(xf)
        out = self.CA_layer(pixelwise_corr(zf, xf))
        return self.conv(out) if self.post else out


class DepthwiseCorr(nn.Module):
    """V3's second correlation: centre crop of the template, 1x1 adapters, depthwise correlation (pad 1)."""

    def __init__(self, channels: int, crop: int) -> None:
        super().__init__()
        self.crop = crop
        self.conv_kernel = conv_bn(channels, channels)
        self.conv_search = conv_bn(channels, channels)

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        start = (int(zf.shape[2]) - self.crop) // 2
        zc = zf[:, :, start:start + self.crop, start:start + self.crop]
        return depthwise_corr(self.conv_kernel(zc), self.conv_search(xf), pad=1)


class BANHead(nn.Module):
    """Anchor-free head: per-branch correlation(s) -> tower -> 1x1 prediction; ``reg`` is ``exp`` (pixels)."""

    def __init__(self, arch: dict[str, Any], channels: int, positions: int) -> None:
        super().__init__()
        adapt, post, dw = bool(arch["corr_adapt"]), bool(arch["corr_post"]), bool(arch["dw_corr"])
        self.dw = dw
        tower_in = positions
        for branch in ("cls", "reg"):
            setattr(self, f"corr_pw_{branch}", PixelCorr(channels, positions, adapt, post))
            if dw:
                setattr(self, f"corr_dw_{branch}", DepthwiseCorr(channels, int(arch["dw_crop"])))
                setattr(self, f"down_{branch}",
                        nn.Sequential(nn.Conv2d(positions + channels, int(arch["down_channels"]), 1)))
                tower_in = int(arch["down_channels"])
        style = arch["tower_style"]
        self.cls_tower = separable_tower(tower_in, arch["cls_tower"], style)
        self.bbox_tower = separable_tower(tower_in, arch["reg_tower"], style)
        self.cls_logits = nn.Sequential(nn.Conv2d(arch["cls_tower"][-1][1], 2, 1))
        self.bbox_pred = nn.Sequential(nn.Conv2d(arch["reg_tower"][-1][1], 4, 1))

    def branch_input(self, branch: str, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        out = getattr(self, f"corr_pw_{branch}")(zf, xf)
        if self.dw:
            dw = getattr(self, f"corr_dw_{branch}")(zf, xf)
            out = getattr(self, f"down_{branch}")(torch.cat([out, dw], dim=1))
        return out

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cls = self.cls_logits(self.cls_tower(self.branch_input("cls", zf, xf)))
        reg = torch.exp(self.bbox_pred(self.bbox_tower(self.branch_input("reg", zf, xf))))
        return cls, reg


class NanoTrackNet(SiameseNet):
    """Template graph: ``z -> (zf,)``; search graph: ``(x, zf) -> (cls (B,2,S,S), reg (B,4,S,S))``.

    ``cls`` holds background/foreground logits (softmax over the channel axis); ``reg`` holds the distances
    (left, top, right, bottom) in search-crop pixels from each score-map point to the box edges.
    """

    template_names = ("zf",)
    output_names = ("cls", "reg")

    def __init__(self, spec: TrackerSpec) -> None:
        super().__init__(spec)
        arch = spec.arch
        self.backbone = MobileNetV3Features(arch["stem"], [list(b) for b in arch["blocks"]])
        positions = spec.template_feat_size ** 2
        self.ban_head = BANHead(arch, self.backbone.out_channels, positions)

    def template(self, z: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.backbone(z),)

    def search(self, x: torch.Tensor, *zfs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ban_head(zfs[0], self.backbone(x))

    def forward_train(self, z: torch.Tensor, x: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], dict]:
        """Head outputs and the template/search backbone features (for distillation losses), in one pass."""
        zf, xf = self.backbone(z), self.backbone(x)
        return self.ban_head(zf, xf), {"zf": zf, "xf": xf}
