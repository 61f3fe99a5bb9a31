"""Students cut from their teacher: structured channel pruning of a NanoTrack network, weights kept.

A :class:`PruneConfig` says how much of the teacher survives: the fraction of every inverted-residual block's
hidden (expanded) channels, the residual blocks dropped whole (a residual block removed is the identity, so
what follows still sees the features it was trained on), and the width and depth of the head's towers.
Block output channels never change, so every surviving block's output can be matched to the teacher's.

Which channels survive is decided on real crops (:func:`measure`):

* ``"energy"``: the energy each channel adds to its consumer, ``E[a_c^2] * ||W_c||^2`` (activation energy
  times the norm of the weights that read it);
* ``"bn"``: ``|gamma|`` of the channel's batch norm (network slimming); cheaper, blind to the data.

What a removed channel contributed on average (``E[a_c] * W_c``) is folded into the next batch norm's running
mean or the next bias, so a pruned network starts close to its teacher before any training.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import SpecError
from ..models.base import SiameseNet
from ..models.blocks import InvertedResidual, make_divisible

IMPORTANCE = ("energy", "bn")


@dataclass(frozen=True)
class PruneConfig:
    """``hidden``: fraction of each block's hidden channels kept (blocks whose hidden equals their input keep
    all); ``drop_blocks``: 0-based indices into ``arch["blocks"]`` of residual blocks removed; ``tower``:
    fraction of tower channels kept; ``tower_depth``: tower layers kept (0 = all; the first ``d - 1`` and the
    last are kept); ``importance``: ``"energy"`` or ``"bn"``. Per-layer ratios (the architecture search's
    actions) override the uniform fractions when given: ``hidden_ratios`` one per teacher block (blocks without
    expansion ignore theirs), ``cls_ratios`` / ``reg_ratios`` one per kept tower layer."""

    hidden: float = 0.5
    drop_blocks: tuple[int, ...] = ()
    tower: float = 0.5
    tower_depth: int = 0
    importance: str = "energy"
    name: str = "pruned"
    hidden_ratios: tuple[float, ...] = ()
    cls_ratios: tuple[float, ...] = ()
    reg_ratios: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not (0.0 < self.hidden <= 1.0 and 0.0 < self.tower <= 1.0):
            raise SpecError(f"PruneConfig.hidden and tower are fractions in (0, 1], got {self.hidden}, {self.tower}")
        if not all(0.0 < r <= 1.0 for r in (*self.hidden_ratios, *self.cls_ratios, *self.reg_ratios)):
            raise SpecError("PruneConfig per-layer ratios are fractions in (0, 1]")
        if self.importance not in IMPORTANCE:
            raise SpecError(f"PruneConfig.importance must be one of {IMPORTANCE}, got {self.importance!r}")
        if self.tower_depth < 0:
            raise SpecError("PruneConfig.tower_depth must be >= 0")


@dataclass
class Stats:
    """Per-module statistics gathered on crops: mean and mean square of each channel a consumer reads."""

    mean: dict[str, torch.Tensor] = field(default_factory=dict)
    sq: dict[str, torch.Tensor] = field(default_factory=dict)
    n: dict[str, int] = field(default_factory=dict)


def kept_blocks(teacher_arch: dict[str, Any], cfg: PruneConfig) -> list[int]:
    """Teacher block indices that survive; refuses to drop a block that is not residual."""
    blocks = teacher_arch["blocks"]
    inp = teacher_arch["stem"] if isinstance(teacher_arch["stem"], int) else teacher_arch["stem"][2]
    residual = []
    for row in blocks:
        out, stride = (row[2], row[3]) if row[0] == "conv" else (row[2], row[5])
        residual.append(row[0] != "conv" and stride == 1 and inp == out)
        inp = out
    for i in cfg.drop_blocks:
        if not 0 <= i < len(blocks) or not residual[i]:
            raise SpecError(f"block {i} cannot be dropped: only residual blocks "
                            f"{[k for k, r in enumerate(residual) if r]} can")
    return [i for i in range(len(blocks)) if i not in set(cfg.drop_blocks)]


def feature_taps(teacher_arch: dict[str, Any], cfg: PruneConfig) -> list[tuple[int, int]]:
    """Pairs ``(student feature index, teacher feature index)`` of the trunk outputs that correspond
    (index 0 is the stem, ``i + 1`` block ``i``)."""
    return [(0, 0)] + [(j + 1, i + 1) for j, i in enumerate(kept_blocks(teacher_arch, cfg))]


def stage_end_taps(teacher_arch: dict[str, Any], min_stride: int = 8) -> set[int]:
    """Teacher feature indices (0 the stem, ``i + 1`` block ``i``) that end a stage (the next block downsamples,
    or none follows) at a total stride of at least ``min_stride``, the last one excluded (it is the trunk's
    output, which the STR term always uses): the extra layers of the Siamese target response."""
    blocks = teacher_arch["blocks"]
    stem = teacher_arch["stem"]
    total = stem[3] if isinstance(stem, list) else 2
    strides = [row[3] if row[0] == "conv" else row[5] for row in blocks]
    ends = set()
    for i, s in enumerate(strides[:-1]):
        total *= s
        if strides[i + 1] > 1 and total >= min_stride:
            ends.add(i + 1)
    return ends


def _hidden_count(hidden: int, inp: int, frac: float) -> int:
    if hidden == inp or frac >= 1.0:
        return hidden
    count = max(8, min(hidden, make_divisible(hidden * frac, 8)))
    return count + 8 if count == inp else count  # hidden == input would change the block's layout


def pruned_arch(teacher_arch: dict[str, Any], cfg: PruneConfig) -> dict[str, Any]:
    """The student's ``arch``: hidden widths scaled, dropped blocks removed, towers narrowed/shortened."""
    arch = copy.deepcopy(teacher_arch)
    kept = kept_blocks(teacher_arch, cfg)
    if cfg.hidden_ratios and len(cfg.hidden_ratios) != len(teacher_arch["blocks"]):
        raise SpecError(f"hidden_ratios needs one ratio per teacher block ({len(teacher_arch['blocks'])}), "
                        f"got {len(cfg.hidden_ratios)}")
    inp = arch["stem"] if isinstance(arch["stem"], int) else arch["stem"][2]
    rows = []
    for i, row in enumerate(teacher_arch["blocks"]):
        if row[0] != "conv":
            k, hidden, out, se, hs, s = row
            frac = cfg.hidden_ratios[i] if cfg.hidden_ratios else cfg.hidden
            row = [k, _hidden_count(hidden, inp, frac), out, se, hs, s]
            inp = out
        else:
            inp = row[2]
        if i in kept:
            rows.append(list(row))
    arch["blocks"] = rows
    for key, ratios in (("cls_tower", cfg.cls_ratios), ("reg_tower", cfg.reg_ratios)):
        layers = _tower_layers(len(arch[key]), cfg.tower_depth)
        if ratios and len(ratios) != len(layers):
            raise SpecError(f"{key}: {len(layers)} layers kept, got {len(ratios)} ratios")
        fracs = ratios or [cfg.tower] * len(layers)
        arch[key] = [[arch[key][i][0], max(8, make_divisible(arch[key][i][1] * f, 8))] for i, f in zip(layers, fracs)]
    return arch


def _tower_layers(depth: int, keep: int) -> list[int]:
    if keep <= 0 or keep >= depth:
        return list(range(depth))
    return list(range(keep - 1)) + [depth - 1]


# ------------------------------------------------------------------------------------------ statistics
def _consumers(net: SiameseNet) -> dict[str, nn.Module]:
    """Modules whose *input* channels are pruned: each block's projection conv, each tower's pw convs and
    the prediction convs; their inputs' statistics are what importance and compensation need."""
    mods: dict[str, nn.Module] = {}
    for i, block in enumerate(net.backbone.features):
        if isinstance(block, InvertedResidual):
            mods[f"block{i}"] = block.conv[-2]
            se = block.conv[5] if len(block.conv) == 9 else None
            if isinstance(se, nn.Module) and hasattr(se, "fc"):
                mods[f"se{i}"] = se.fc[0]
    head = net.ban_head
    for branch, tower, pred in (("cls", head.cls_tower, head.cls_logits[0]), ("reg", head.bbox_tower,
                                                                                head.bbox_pred[0])):
        for j, mod in enumerate(tower):
            if isinstance(mod, nn.Conv2d) and mod.groups > 1:
                mods[f"{branch}_dw{j}"] = mod
        mods[f"{branch}_pred"] = pred
    return mods


@torch.no_grad()
def forward_crops(net: SiameseNet, crops: Iterable[tuple[torch.Tensor, torch.Tensor]], hooks: list) -> None:
    """Run ``(z, x)`` batches of crops through ``net`` in eval mode for what its ``hooks`` record, then remove the
    hooks, however the pass ends."""
    try:
        net.eval()
        for z, x in crops:
            net.search(x, *net.template(z))
    finally:
        for h in hooks:
            h.remove()


@torch.no_grad()
def measure(net: SiameseNet, crops: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> Stats:
    """Channel mean and mean square of every consumer's input, over ``(z, x)`` batches of real crops
    (already normalised as the network expects)."""
    stats = Stats()
    hooks = []

    def hook(name: str):
        def fn(mod, args):
            a = args[0].double()
            dims = (0, 2, 3) if a.dim() == 4 else (0,)
            n = a.shape[0]
            stats.mean[name] = stats.mean.get(name, 0) + a.mean(dim=dims) * n
            stats.sq[name] = stats.sq.get(name, 0) + (a * a).mean(dim=dims) * n
            stats.n[name] = stats.n.get(name, 0) + n
        return fn

    for name, mod in _consumers(net).items():
        hooks.append(mod.register_forward_pre_hook(hook(name)))
    forward_crops(net, crops, hooks)
    if not stats.n:
        raise SpecError("no crops to measure channel importance on")
    for d in (stats.mean, stats.sq):
        for k in d:
            d[k] = (d[k] / stats.n[k]).float()
    return stats
