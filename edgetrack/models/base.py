"""The contract every Siamese network in edgetrack follows.

Networks hold no tracking state. They expose two graphs:

* ``template(z) -> (zf, ...)``: exemplar crop ``(B, 3, E, E)`` (normalised as the spec says) to a tuple of
  template tensors named by :attr:`SiameseNet.template_names` (usually just ``("zf",)``);
* ``search(x, *zfs) -> outputs``: search crop ``(B, 3, I, I)`` and the template tensors to the head outputs named
  by :attr:`SiameseNet.output_names` (``("cls", "reg")`` for NanoTrack and SiamRPN, ``("response",)`` for SiamFC).

Work that depends only on the template belongs in ``template`` so the per-frame graph stays small.
``forward(z, x)`` runs both, for training. The :class:`~edgetrack.spec.TrackerSpec` the network was built from
is kept on ``self.spec`` so checkpoints and exports always carry it.
"""
from __future__ import annotations

import torch
from torch import nn

from ..spec import TrackerSpec


class SiameseNet(nn.Module):
    """Base class: subclasses implement :meth:`template` and :meth:`search`."""

    template_names: tuple[str, ...] = ("zf",)
    output_names: tuple[str, ...] = ("cls", "reg")

    def __init__(self, spec: TrackerSpec) -> None:
        super().__init__()
        self.spec = spec

    def template(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def search(self, x: torch.Tensor, *zfs: torch.Tensor) -> tuple[torch.Tensor, ...]:  # pragma: no cover
        raise NotImplementedError

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.search(x, *self.template(z))

    def forward_train(self, z: torch.Tensor, x: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], dict]:
        """Head outputs plus the intermediate features distillation losses use (``zf``/``xf`` where known)."""
        zfs = self.template(z)
        return self.search(x, *zfs), {"zf": zfs[0]}
