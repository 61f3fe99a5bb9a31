"""Removing squeeze-excite units: each unit's gate replaced by its mean over real crops, folded into a neighbour.

A squeeze-excite unit costs little arithmetic but a global pooling, two tiny matrix products and a broadcast
multiply, and on ONNX Runtime's CPU path each of those leaves the blocked channel layout the convolutions run in:
on the bundled fast student the five units are about a tenth of the search graph's one-thread time. With the
gate held at its mean the unit is a per-channel constant, which folds exactly into the batch norm before it (an
expanding block: ``dw, BN, SE, act``) or into the input channels of the projection after it (``dw, BN, act, SE,
pw``). The network then differs from the original only where the gate moved away from its mean; distillation
from the teacher recovers that (``fold_se`` in a training config).
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import replace

import torch

from ..errors import SpecError
from ..models.base import SiameseNet
from ..models.blocks import InvertedResidual, SqueezeExcite
from ..models.registry import build_model
from .prune import forward_crops


def _se_blocks(net: SiameseNet) -> dict[int, InvertedResidual]:
    """Backbone index -> block, for every inverted residual with a squeeze-excite unit."""
    return {i: b for i, b in enumerate(net.backbone.features)
            if isinstance(b, InvertedResidual) and any(isinstance(m, SqueezeExcite) for m in b.conv)}


@torch.no_grad()
def mean_gates(net: SiameseNet, crops: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> dict[int, torch.Tensor]:
    """Per block index, each channel's squeeze-excite gate averaged over the template and search crops of
    ``(z, x)`` batches (normalised as the network expects), every crop weighted alike."""
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, int] = {}
    hooks = []

    def hook(i: int):
        def fn(mod, args, gate):  # the unit's gate branch: (batch, channels) gates
            sums[i] = sums.get(i, 0) + gate.double().sum(dim=0)
            counts[i] = counts.get(i, 0) + gate.shape[0]
        return fn

    blocks = _se_blocks(net)
    for i, block in blocks.items():
        se = next(m for m in block.conv if isinstance(m, SqueezeExcite))
        hooks.append(se.fc.register_forward_hook(hook(i)))
    forward_crops(net, crops, hooks)
    if blocks and not counts:
        raise SpecError("no crops to measure the squeeze-excite gates on")
    return {i: (sums[i] / counts[i]).float() for i in sums}


@torch.no_grad()
def fold_se(net: SiameseNet, gates: dict[int, torch.Tensor]) -> SiameseNet:
    """A copy of ``net`` without squeeze-excite units (its spec says so: ``use_se`` 0 in every block row), each
    unit's ``gates`` folded into the batch norm before it or the projection after it."""
    blocks = _se_blocks(net)
    missing = sorted(set(blocks) - set(gates))
    if missing:
        raise SpecError(f"no mean gate for the squeeze-excite units of blocks {missing}")
    arch = copy.deepcopy(net.spec.arch)
    for row in arch["blocks"]:
        if row and row[0] != "conv":
            row[3] = 0
    out = build_model(replace(net.spec, arch=arch))
    state = {k: v for k, v in net.state_dict().items() if not _in_se(k, blocks)}
    out.load_state_dict(state)
    for i in blocks:
        layers, g = out.backbone.features[i].conv, gates[i]
        if len(layers) == 9:  # pw, BN, act, dw, BN, SE, act, pw, BN: scale the BN before the unit
            layers[4].weight.mul_(g)
            layers[4].bias.mul_(g)
        else:  # dw, BN, act, SE, pw, BN: scale the projection's input channels
            layers[4].weight.mul_(g.view(1, -1, 1, 1))
    return out.eval()


def _in_se(key: str, blocks: dict[int, InvertedResidual]) -> bool:
    """Whether a state-dict key belongs to a squeeze-excite unit of one of ``blocks``."""
    parts = key.split(".")
    return parts[:2] == ["backbone", "features"] and int(parts[2]) in blocks and ".fc." in key
