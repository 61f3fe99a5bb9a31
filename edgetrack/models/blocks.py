"""Building blocks shared by the NanoTrack family (MobileNetV3-style backbone, separable towers).

Layer indices inside each ``nn.Sequential`` follow the authors' NanoTrack code, so their checkpoints map onto
these modules by key name alone.
"""
from __future__ import annotations

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` (never down by more than 10%)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class HSigmoid(nn.Module):
    """``relu6(x + 3) / 6``, written as the fused op: one ONNX ``HardSigmoid`` instead of four element-wise ops."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.hardsigmoid(x)


class HSwish(nn.Module):
    """``x * relu6(x + 3) / 6`` as one ONNX ``HardSwish`` (opset 14+): about a quarter less backbone time on
    ONNX Runtime than the unfused form, same values."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.hardswish(x)


def activation(use_hs: bool) -> nn.Module:
    return HSwish() if use_hs else nn.ReLU(inplace=True)


class SqueezeExcite(nn.Module):
    """Channel attention with two linear layers (``fc.0``, ``fc.2``) and a hard sigmoid."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = make_divisible(channels // reduction, 8)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                nn.Linear(hidden, channels), HSigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        y = self.fc(x.mean(dim=(2, 3))).view(b, c, 1, 1)
        return x * y


class InvertedResidual(nn.Module):
    """MobileNetV3 block: [pw expand] -> dw (k, stride) -> [SE] -> pw linear, residual when shapes allow."""

    def __init__(self, inp: int, hidden: int, out: int, kernel: int, stride: int, use_se: bool,
                 use_hs: bool) -> None:
        super().__init__()
        self.identity = stride == 1 and inp == out
        pad = (kernel - 1) // 2
        dw = nn.Conv2d(hidden, hidden, kernel, stride, pad, groups=hidden, bias=False)
        se = SqueezeExcite(hidden) if use_se else nn.Identity()
        if inp == hidden:
            layers = [dw, nn.BatchNorm2d(hidden), activation(use_hs), se,
                      nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        else:
            layers = [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), activation(use_hs),
                      dw, nn.BatchNorm2d(hidden), se, activation(use_hs),
                      nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.identity else y


class ConvBNAct(nn.Sequential):
    """Dense ``k x k`` conv, BN, ReLU: on CPUs a dense conv runs far more FLOPs per second than a depthwise one."""

    def __init__(self, inp: int, out: int, kernel: int, stride: int) -> None:
        pad = (kernel - 1) // 2
        super().__init__(nn.Conv2d(inp, out, kernel, stride, pad, bias=False), nn.BatchNorm2d(out),
                         nn.ReLU(inplace=True))


def make_block(inp: int, row: list) -> tuple[nn.Module, int]:
    """One backbone block from a spec row; returns it and its output channels.

    Rows are ``[kernel, hidden, out, use_se, use_hs, stride]`` for a MobileNetV3 inverted residual, or
    ``["conv", kernel, out, stride]`` for a dense conv-BN-ReLU.
    """
    if row and row[0] == "conv":
        _, kernel, out, stride = row
        return ConvBNAct(inp, int(out), int(kernel), int(stride)), int(out)
    kernel, hidden, out, use_se, use_hs, stride = (int(v) for v in row)
    return InvertedResidual(inp, hidden, out, kernel, stride, bool(use_se), bool(use_hs)), out


class MobileNetV3Features(nn.Module):
    """A MobileNetV3-small-style trunk: ``features.0`` is the stem, ``features.1..`` the blocks.

    ``stem`` is the stem's channel count (3x3, stride 2, h-swish) or a row ``["conv", kernel, out, stride]``
    for a dense stem (e.g. a 4x4 stride-4 conv, which removes the costly full-resolution layers).
    ``blocks`` rows are described in :func:`make_block`.
    """

    def __init__(self, stem: int | list, blocks: list[list]) -> None:
        super().__init__()
        if isinstance(stem, (list, tuple)):
            first, inp = make_block(3, list(stem))
        else:
            inp = int(stem)
            first = nn.Sequential(nn.Conv2d(3, inp, 3, 2, 1, bias=False), nn.BatchNorm2d(inp), HSwish())
        layers: list[nn.Module] = [first]
        for row in blocks:
            block, inp = make_block(inp, list(row))
            layers.append(block)
        self.features = nn.Sequential(*layers)
        self.out_channels = inp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def separable_tower(in_ch: int, layers: list[list[int]], style: str) -> nn.Sequential:
    """A stack of convolutions.

    ``layers`` rows are ``[kernel, out_channels]``. ``style="pw_bn_act"`` gives depthwise-separable groups of
    ``dw, pw, BN, ReLU6`` (NanoTrack V1/V2 towers); ``style="dw_bn_act"`` gives ``dw, BN, ReLU6, pw, BN``
    (NanoTrack V3 towers); ``style="dense"`` gives ``conv k x k, BN, ReLU`` (fast on CPUs at small widths).
    """
    mods: list[nn.Module] = []
    ch = in_ch
    for kernel, out in layers:
        pad = (kernel - 1) // 2
        dw = nn.Conv2d(ch, ch, kernel, 1, pad, groups=ch, bias=False)
        if style == "dense":
            mods += list(ConvBNAct(ch, out, kernel, 1))
        elif style == "pw_bn_act":
            mods += [dw, nn.Conv2d(ch, out, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU6(inplace=True)]
        elif style == "dw_bn_act":
            mods += [dw, nn.BatchNorm2d(ch), nn.ReLU6(inplace=True), nn.Conv2d(ch, out, 1, bias=False),
                     nn.BatchNorm2d(out)]
        else:
            raise ValueError(f"unknown tower style {style!r}")
        ch = out
    return nn.Sequential(*mods)


def conv_bn(in_ch: int, out_ch: int) -> nn.Sequential:
    """1x1 conv (with bias) followed by BN: the adapters in front of NanoTrack's correlations."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1), nn.BatchNorm2d(out_ch))
