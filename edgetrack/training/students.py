"""Student architectures for distillation, and initialising a student from channel slices of its teacher.

Two kinds, as in TSsKD: the *intelligent* student keeps the teacher's structure at about half its channels (so it
can start from slices of the teacher's weights), the *dull* student is designed for measured CPU latency: a 4x4
stride-4 dense stem, dense 3x3 convs and one-layer towers (dense convs run about 8x more FLOPs per second than
depthwise ones on the CPUs we target). Architectures are plain ``spec.arch`` dicts, so any student trains,
exports and runs through the same code as the teachers.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import SpecError
from ..spec import TrackerSpec
from .search_space import DULL_DEFAULT_ARCH


def _scale(ch: int, width: float, minimum: int = 8) -> int:
    return max(minimum, int(round(ch * width / 8.0)) * 8)


def scaled_arch(arch: dict[str, Any], width: float) -> dict[str, Any]:
    """The same NanoTrack-style architecture with every feature channel count scaled by ``width``.

    Correlation channels (one per template position) are fixed by the template size and do not scale.
    """
    out = copy.deepcopy(arch)
    if isinstance(out["stem"], int):
        out["stem"] = _scale(out["stem"], width)
    blocks = []
    for row in out["blocks"]:
        if row and row[0] == "conv":
            blocks.append(["conv", row[1], _scale(row[2], width), row[3]])
        else:
            k, hidden, ch, se, hs, s = row
            blocks.append([k, _scale(hidden, width), _scale(ch, width), se, hs, s])
    out["blocks"] = blocks
    out["cls_tower"] = [[k, _scale(c, width)] for k, c in out["cls_tower"]]
    out["reg_tower"] = [[k, _scale(c, width)] for k, c in out["reg_tower"]]
    if "down_channels" in out:
        out["down_channels"] = _scale(out["down_channels"], width)
    return out


def student_spec(teacher: TrackerSpec, kind: str, arch: dict[str, Any] | None = None,
                 width: float = 0.5) -> TrackerSpec:
    """Spec of a student of ``teacher``: ``kind`` is ``"intelligent"``, ``"dull"`` or ``"custom"`` (give ``arch``).

    Tracking constants (crop sizes, stride, window, penalty, lr, normalisation) are the teacher's.
    """
    if teacher.family != "nanotrack":
        raise SpecError(f"students are built for the nanotrack family; the teacher is {teacher.family}")
    if kind == "intelligent":
        new_arch = scaled_arch(teacher.arch, width)
    elif kind == "dull":
        new_arch = copy.deepcopy(arch or DULL_DEFAULT_ARCH)
    elif kind == "custom" and arch is not None:
        new_arch = copy.deepcopy(arch)
    else:
        raise SpecError(f"unknown student kind {kind!r} (or 'custom' without an arch)")
    # distillation compares score maps cell by cell: the student's map must match the teacher's size
    new_arch["corr_post"] = bool(teacher.arch.get("corr_post", False))
    return teacher.with_(arch=new_arch, name=f"{teacher.name}-{kind}-student")


def read_student_spec(path: str | Path) -> tuple[str, Any]:
    """``(name, PruneConfig)`` of a ``student_spec.json`` (written by ``edgetrack-train search``): the student's
    name (``"dull"`` unless it says otherwise) and how it is cut from the teacher (per-layer ratios)."""
    import json

    from .config import from_dict
    from .prune import PruneConfig

    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read the student spec {path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("cut"), dict):
        raise SpecError(f"{path} is not a student spec: it needs a 'cut' mapping (PruneConfig keys)")
    name = str(doc.get("name") or "dull")
    return name, from_dict(PruneConfig, {**doc["cut"], "name": name}, prefix="cut.")


def _slice_into(dst: torch.Tensor, src: torch.Tensor) -> bool:
    """Copy the leading slice of ``src`` into ``dst`` along every axis; False when the shapes do not correspond."""
    if dst.dim() != src.dim() or (dst.dim() == 4 and dst.shape[2:] != src.shape[2:]):
        return False  # different ranks or kernel sizes: the weights mean different things
    index = tuple(slice(0, min(a, b)) for a, b in zip(dst.shape, src.shape))
    if any(s.stop == 0 for s in index):
        return False
    with torch.no_grad():
        dst[index].copy_(src[index])
    return True


@torch.no_grad()
def init_from_teacher(student: nn.Module, teacher: nn.Module) -> list[str]:
    """Initialise every student tensor whose name exists in the teacher from the teacher's leading channels.

    Depthwise kernels, BN statistics and 1x1 convs all slice naturally. Returns the names that were copied.
    """
    source = teacher.state_dict()
    copied = []
    for name, tensor in student.state_dict().items():
        if name in source and name.split(".")[-1] != "num_batches_tracked" and _slice_into(tensor, source[name]):
            copied.append(name)
    return copied


def train_mode(net: nn.Module, freeze_bn: bool = False) -> nn.Module:
    """``net.train()``; with ``freeze_bn`` its batch norms stay in eval mode: they normalise with the running
    statistics the student started with (inherited from the teacher) and never update them, while their scale
    and shift still learn. Fine-tuning on a small set of videos then cannot move the statistics toward those
    videos, and the student trains as it will run (no batch statistics of 16 crops)."""
    net.train()
    if freeze_bn:
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    return net
