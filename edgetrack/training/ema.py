"""An exponential moving average of a student's weights during training (``ema_decay`` in a config).

Each step, after the optimizer, every floating-point tensor of the student's state (weights and batch-norm
statistics alike) moves toward the student's: ``avg = d * avg + (1 - d) * w`` with
``d = min(ema_decay, (1 + step) / (10 + step))``, so the first steps are not dominated by the starting point.
The average is saved beside the student as ``student_<name>_ema.safetensors`` (and, with ``keep_every``, as
``student_<name>_step<N>_ema.safetensors``); it travels in the resumable state, so a resumed run continues it.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..models.io import save_checkpoint


class WeightAverage:
    """The running average of one network's floating-point state."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise InputError(f"ema_decay must be 0 (off) or a number between 0 and 1, got {decay!r}")
        self.decay = float(decay)
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average toward ``model`` after its ``step``-th optimizer step (1 for the first)."""
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        state = model.state_dict()
        for k, avg in self.shadow.items():
            avg.mul_(d).add_(state[k].detach(), alpha=1.0 - d)

    def averaged(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` (eval mode) holding the averaged state."""
        out = copy.deepcopy(model).eval()
        out.load_state_dict({**out.state_dict(), **self.shadow})
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise InputError(f"the saved weight average lacks {missing[:3]}: it is not this student's")
        for k, avg in self.shadow.items():
            avg.copy_(state[k])


def make_averages(students: dict[str, nn.Module], decay: float) -> dict[str, WeightAverage]:
    """One average per student, or none when ``decay`` is 0."""
    if decay == 0:
        return {}
    return {n: WeightAverage(m, decay) for n, m in students.items()}


def save_averages(out: Path, averages: dict[str, WeightAverage], students: dict[str, nn.Module], step: int,
                  keep: bool) -> None:
    """``student_<name>_ema.safetensors`` for every averaged student (and the step's copy with ``keep``)."""
    for n, avg in averages.items():
        net = avg.averaged(students[n])
        meta = {"step": str(step), "ema_decay": str(avg.decay)}
        save_checkpoint(net, out / f"student_{n}_ema.safetensors", meta)
        if keep:
            save_checkpoint(net, out / f"student_{n}_step{step}_ema.safetensors", meta)
