"""Feature-level distillation options from DLF: point-wise (``||F_T - E(F_S)||^2`` with a 1x1 adapter ``E``)
and pair-wise (MSE between the ``hw x hw`` cosine-similarity matrices of student and teacher features)."""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class ChannelAdapter(nn.Module):
    """1x1 convolution ``E`` mapping student features ``(B, c_s, H, W)`` to the teacher's ``c_t`` channels."""

    def __init__(self, c_s: int, c_t: int, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_s, c_t, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def _resize_to(x: Tensor, size: Sequence[int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def pointwise_feature_loss(student_feat: Tensor, teacher_feat: Tensor, adapter: nn.Module | None = None) -> Tensor:
    """Point-wise distillation ``mean((F_t - E(F_s))^2)`` (``||.||^2`` divided by the element count).

    ``E`` is ``adapter`` (e.g. :class:`ChannelAdapter`) or the identity; ``E(F_s)`` is resized (bilinear) to
    the teacher's spatial size.
    """
    s = adapter(student_feat) if adapter is not None else student_feat
    if s.shape[1] != teacher_feat.shape[1]:
        raise ValueError(f"student features have {s.shape[1]} channels after the adapter, teacher "
                         f"{teacher_feat.shape[1]}: pass a ChannelAdapter({student_feat.shape[1]}, "
                         f"{teacher_feat.shape[1]})")
    return F.mse_loss(_resize_to(s, teacher_feat.shape[-2:]), teacher_feat.detach())


def pairwise_similarity(feat: Tensor, eps: float = 1e-12) -> Tensor:
    """Cosine similarities between all spatial positions: ``(B, C, H, W)`` -> ``(B, HW, HW)``."""
    f = F.normalize(feat.flatten(2), dim=1, eps=eps)
    return f.transpose(1, 2) @ f


def pairwise_feature_loss(student_feat: Tensor, teacher_feat: Tensor, pool: int | None = None) -> Tensor:
    """Pair-wise distillation ``mean((A_s - A_t)^2)`` of the ``(HW x HW)`` cosine-similarity matrices.

    Channels may differ. The student map is resized to the teacher's size; ``pool`` average-pools both to
    ``pool x pool`` first (fewer pairs, as structured distillation pools into patches).
    """
    teacher_feat = teacher_feat.detach()
    student_feat = _resize_to(student_feat, teacher_feat.shape[-2:])
    if pool is not None:
        student_feat = F.adaptive_avg_pool2d(student_feat, pool)
        teacher_feat = F.adaptive_avg_pool2d(teacher_feat, pool)
    return F.mse_loss(pairwise_similarity(student_feat), pairwise_similarity(teacher_feat))


def trunk_taps(backbone, x: Tensor, indices: Sequence[int]) -> tuple[Tensor, list[Tensor]]:
    """Run a ``MobileNetV3Features`` trunk and keep the outputs of ``features[i]`` for ``i`` in ``indices``."""
    wanted, taps = set(indices), {}
    for i, layer in enumerate(backbone.features):
        x = layer(x)
        if i in wanted:
            taps[i] = x
    return x, [taps[i] for i in indices]


def tap_feature_loss(student_taps: Sequence[Tensor], teacher_taps: Sequence[Tensor], eps: float = 1e-6) -> Tensor:
    """Point-wise distillation at every corresponding trunk output (a pruned student keeps its teacher's block
    output channels, so no adapter): ``mean((F_s - F_t)^2) / mean(F_t^2)`` per tap, averaged over taps."""
    if len(student_taps) != len(teacher_taps) or not student_taps:
        raise ValueError("one teacher tap per student tap, at least one")
    total = student_taps[0].new_zeros(())
    for s, t in zip(student_taps, teacher_taps):
        t = t.detach()
        total = total + F.mse_loss(s, t) / (t.pow(2).mean() + eps)
    return total / len(student_taps)
