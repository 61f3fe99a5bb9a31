"""Building the pruned student: channel scores, then the teacher's weights copied by index into the smaller
network, with the removed channels' mean contribution folded into the next batch norm or bias."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import SpecError
from ..models.base import SiameseNet
from ..models.blocks import InvertedResidual
from ..models.registry import build_model
from ..spec import TrackerSpec
from .prune import PruneConfig, Stats, _tower_layers, kept_blocks, pruned_arch


def _top(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices kept (the ``k`` highest scores, in channel order) and removed."""
    order = torch.argsort(scores, descending=True)
    return order[:k].sort().values, order[k:].sort().values


def _bn_copy(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, idx: torch.Tensor | None = None) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        value = getattr(src, name).data
        getattr(dst, name).data.copy_(value if idx is None else value[idx])


def _block_scores(block: InvertedResidual, name: str, stats: Stats, method: str) -> torch.Tensor:
    proj = block.conv[-2].weight.data  # (out, hidden, 1, 1)
    if method == "bn":
        return block.conv[4].weight.data.abs()
    return stats.sq[name] * proj.pow(2).sum(dim=(0, 2, 3))


def _copy_se(dst, src, idx, rem, stats: Stats, name: str) -> None:
    """Squeeze-excite on pruned channels: keep the strongest reduce units, fold the removed inputs' means."""
    r_new = dst.fc[0].out_features
    w0, w2 = src.fc[0].weight.data, src.fc[2].weight.data
    unit = w0.norm(dim=1) * w2.norm(dim=0)
    r_idx, _ = _top(unit, r_new)
    dst.fc[0].weight.data.copy_(w0[r_idx][:, idx])
    bias = src.fc[0].bias.data[r_idx].clone()
    if len(rem):
        bias += w0[r_idx][:, rem] @ stats.mean[name][rem]
    dst.fc[0].bias.data.copy_(bias)
    dst.fc[2].weight.data.copy_(w2[idx][:, r_idx])
    dst.fc[2].bias.data.copy_(src.fc[2].bias.data[idx])


@torch.no_grad()
def _copy_block(dst: InvertedResidual, src: InvertedResidual, i: int, stats: Stats, method: str) -> None:
    if len(dst.conv) != 9:  # no expansion: nothing pruned
        dst.load_state_dict(src.state_dict())
        return
    hidden = dst.conv[0].out_channels
    idx, rem = _top(_block_scores(src, f"block{i}", stats, method), hidden)
    dst.conv[0].weight.data.copy_(src.conv[0].weight.data[idx])
    _bn_copy(dst.conv[1], src.conv[1], idx)
    dst.conv[3].weight.data.copy_(src.conv[3].weight.data[idx])
    _bn_copy(dst.conv[4], src.conv[4], idx)
    if hasattr(src.conv[5], "fc"):
        _copy_se(dst.conv[5], src.conv[5], idx, rem, stats, f"se{i}")
    proj = src.conv[7].weight.data
    dst.conv[7].weight.data.copy_(proj[:, idx])
    _bn_copy(dst.conv[8], src.conv[8])
    if len(rem):
        dst.conv[8].running_mean.data -= proj[:, rem, 0, 0] @ stats.mean[f"block{i}"][rem]


def _tower_scores(tower: nn.Sequential, t: int, depth: int, branch: str, pred: nn.Conv2d, stats: Stats,
                  method: str) -> torch.Tensor:
    """Scores of teacher tower layer ``t``'s output channels (read by layer ``t + 1``'s dw or the prediction)."""
    if method == "bn":
        return tower[4 * t + 2].weight.data.abs()
    if t + 1 < depth:
        dw, pw = tower[4 * (t + 1)].weight.data, tower[4 * (t + 1) + 1].weight.data
        weight = dw.pow(2).sum(dim=(1, 2, 3)) * pw.pow(2).sum(dim=(0, 2, 3))
        return stats.sq[f"{branch}_dw{4 * (t + 1)}"] * weight
    return stats.sq[f"{branch}_pred"] * pred.weight.data.pow(2).sum(dim=(0, 2, 3))


@torch.no_grad()
def _copy_tower(dst: nn.Sequential, src: nn.Sequential, dst_pred: nn.Conv2d, src_pred: nn.Conv2d, branch: str,
                cfg: PruneConfig, stats: Stats, method: str) -> None:
    depth = len(src) // 4
    if len(src) != 4 * depth or not all(isinstance(src[4 * t + 1], nn.Conv2d) for t in range(depth)):
        raise SpecError("tower pruning supports NanoTrack V1/V2 towers (dw, pw, BN, ReLU6 per layer)")
    layers = _tower_layers(depth, cfg.tower_depth)
    prev_idx, prev_rem, prev_t = None, None, None
    for m, t in enumerate(layers):
        out = dst[4 * m + 1].out_channels
        idx, rem = _top(_tower_scores(src, t, depth, branch, src_pred, stats, method), out)
        dw, pw = src[4 * t].weight.data, src[4 * t + 1].weight.data
        in_idx = prev_idx if prev_idx is not None else torch.arange(dw.shape[0])
        dst[4 * m].weight.data.copy_(dw[in_idx])
        dst[4 * m + 1].weight.data.copy_(pw[idx][:, in_idx])
        _bn_copy(dst[4 * m + 2], src[4 * t + 2], idx)
        if prev_rem is not None and len(prev_rem) and prev_t == t - 1:
            mean_in = stats.mean[f"{branch}_dw{4 * t}"][prev_rem] * dw[prev_rem].sum(dim=(1, 2, 3))
            dst[4 * m + 2].running_mean.data -= pw[idx][:, prev_rem, 0, 0] @ mean_in
        prev_idx, prev_rem, prev_t = idx, rem, t
    w = src_pred.weight.data
    dst_pred.weight.data.copy_(w[:, prev_idx])
    bias = src_pred.bias.data.clone()
    if layers[-1] == depth - 1 and len(prev_rem):
        bias += w[:, prev_rem, 0, 0] @ stats.mean[f"{branch}_pred"][prev_rem]
    dst_pred.bias.data.copy_(bias)


def pruned_spec(teacher: TrackerSpec, cfg: PruneConfig) -> TrackerSpec:
    """The student's spec: the teacher's tracking constants with the pruned ``arch``."""
    if teacher.family != "nanotrack":
        raise SpecError(f"pruning is built for the nanotrack family; the teacher is {teacher.family}")
    return teacher.with_(arch=pruned_arch(teacher.arch, cfg), name=f"{teacher.name}-{cfg.name}")


@torch.no_grad()
def prune_teacher(teacher: SiameseNet, cfg: PruneConfig, stats: Stats | None) -> SiameseNet:
    """A new student network cut from ``teacher`` (left untouched) by ``cfg``; ``stats`` from
    :func:`edgetrack.training.prune.measure` (needed for ``"energy"`` and for the mean compensation)."""
    method = cfg.importance
    if stats is None:
        raise SpecError("pruning needs channel statistics measured on crops (edgetrack.training.prune.measure)")
    student = build_model(pruned_spec(teacher.spec, cfg))
    student.backbone.features[0].load_state_dict(teacher.backbone.features[0].state_dict())
    for j, i in enumerate(kept_blocks(teacher.spec.arch, cfg)):
        dst, src = student.backbone.features[j + 1], teacher.backbone.features[i + 1]
        if isinstance(src, InvertedResidual):
            _copy_block(dst, src, i + 1, stats, method)
        else:
            dst.load_state_dict(src.state_dict())
    sh, th = student.ban_head, teacher.ban_head
    for name, mod in th.named_children():
        if name not in ("cls_tower", "bbox_tower", "cls_logits", "bbox_pred"):
            getattr(sh, name).load_state_dict(mod.state_dict())
    _copy_tower(sh.cls_tower, th.cls_tower, sh.cls_logits[0], th.cls_logits[0], "cls", cfg, stats, method)
    _copy_tower(sh.bbox_tower, th.bbox_tower, sh.bbox_pred[0], th.bbox_pred[0], "reg", cfg, stats, method)
    return student.eval()

