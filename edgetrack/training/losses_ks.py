"""Knowledge sharing (KS) between students, TSsKD Eqs. 17-23 and their n-student form (Eq. 33).

Student ``i`` (the learner) learns from student ``j`` (the sharer) with ::

    L_KS(i || j) = sum_proposals KL(p_i || p_j)  +  sum_proposals smoothL1(r_i - r_j)           (Eqs. 17, 18)

summed over every proposal (score-map cell, or anchor for RPN) and averaged over the batch; the sharer's
tensors are detached. The gate (Eq. 22) tests the *learner's own* ground-truth loss against the teacher's on the
same batch: ``sigma_i = sigma(e)`` if ``L_GT(i) - L_GT(t) < h``, else 0, with ``sigma(e) = sigma0 * f^e``. In this
project ``h`` is relative: ``h = ks_h * L_GT(t)`` (see :func:`ks_threshold`). With ``n`` students (Eq. 33) ::

    KS_i = (1 / n) * sum_{j != i} beta_ij * sigma_i * L_KS(i || j)

where ``beta_ij`` discounts what the intelligent student takes from the others.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from .losses import ANCHOR_FREE, RPN, SIAMFC, as_outputs, canonical_family, pair_logits, rpn_deltas, smooth_l1

Tensor = torch.Tensor
Outputs = Mapping[str, Tensor] | Sequence[Tensor]


def _scalar(value: float | Tensor) -> float:
    return float(value.detach()) if isinstance(value, Tensor) else float(value)


def ks_sigma(epoch: int, cfg) -> float:
    """``sigma(e) = sigma0 * f^e``, and 0 once it falls below ``cfg.ks_sigma_min``."""
    sigma = cfg.ks_sigma0 * cfg.ks_decay ** max(int(epoch), 0)
    return sigma if sigma >= cfg.ks_sigma_min else 0.0


def ks_threshold(teacher_loss_gt: float | Tensor, cfg) -> float:
    """``h`` on this batch: ``cfg.ks_h`` times the teacher's ground-truth loss (a relative threshold: the paper's
    absolute 0.005 was set for its own loss scale; here the teacher's CE + (1 - IoU) is ~0.3-0.5)."""
    return cfg.ks_h * max(_scalar(teacher_loss_gt), 0.0)


def ks_gate(learner_loss_gt: float | Tensor, teacher_loss_gt: float | Tensor, epoch: int, cfg) -> float:
    """Eq. 22: ``sigma(e)`` if ``L_GT(learner) - L_GT(teacher) < h``, else 0."""
    gap = _scalar(learner_loss_gt) - _scalar(teacher_loss_gt)
    return ks_sigma(epoch, cfg) if gap < ks_threshold(teacher_loss_gt, cfg) else 0.0


def two_student_beta(beta: float = 0.5, intelligent: int = 1) -> list[list[float]]:
    """``beta_ij`` for two students: the dull one learns from the intelligent with 1, the reverse with ``beta``."""
    if intelligent not in (0, 1):
        raise ValueError("intelligent must be 0 or 1")
    return beta_matrix(2, intelligent, beta)


def beta_matrix(n: int, intelligent: int, beta: float) -> list[list[float]]:
    """``beta_ij`` (Eq. 33): 1 for every learner except the intelligent student, which takes ``beta``."""
    if not 0 <= intelligent < n:
        raise ValueError(f"intelligent must index one of the {n} students, got {intelligent}")
    return [[0.0 if i == j else (float(beta) if i == intelligent else 1.0) for j in range(n)] for i in range(n)]


def ks_cls(family: str, learner: Tensor, sharer: Tensor) -> Tensor:
    """Eq. 17: ``sum_proposals KL(p_learner || p_sharer)`` per sample, averaged over the batch."""
    fam = canonical_family(family)
    sharer = sharer.detach()
    if fam == SIAMFC:
        pl = torch.sigmoid(learner)
        kl = (pl * (F.logsigmoid(learner) - F.logsigmoid(sharer))
              + (1.0 - pl) * (F.logsigmoid(-learner) - F.logsigmoid(-sharer)))
    else:
        log_l = F.log_softmax(pair_logits(fam, learner), dim=-1)
        log_s = F.log_softmax(pair_logits(fam, sharer), dim=-1)
        kl = (log_l.exp() * (log_l - log_s)).sum(dim=-1)
    return kl.reshape(kl.shape[0], -1).sum(dim=1).mean()


def ks_reg(family: str, learner: Tensor, sharer: Tensor, scale: float, beta: float = 1.0 / 9.0) -> Tensor:
    """Eq. 18: smooth-L1 between learner and sharer regression on *all* proposals, summed per sample and over
    the four coordinates, averaged over the batch. RPN: on the deltas; anchor-free: on the ltrb distances
    divided by ``scale`` (the exemplar size, so the values are on the deltas' scale, not in pixels)."""
    fam = canonical_family(family)
    sharer = sharer.detach()
    if fam == RPN:
        diff = rpn_deltas(learner) - rpn_deltas(sharer)
    elif fam == ANCHOR_FREE:
        diff = (learner - sharer) / float(scale)
    else:
        raise ValueError("siamfc has no regression branch")
    cells = smooth_l1(diff, beta)
    return cells.reshape(cells.shape[0], -1).sum(dim=1).mean()


def ks_pair_loss(family: str, learner: Outputs, sharer: Outputs, scale: float) -> Tensor:
    """``L_KS(learner || sharer)``: Eq. 17 plus (families with regression) Eq. 18."""
    fam = canonical_family(family)
    lo, so = as_outputs(fam, learner), as_outputs(fam, sharer)
    key = "response" if fam == SIAMFC else "cls"
    loss = ks_cls(fam, lo[key], so[key])
    if fam != SIAMFC:
        loss = loss + ks_reg(fam, lo["reg"], so["reg"], scale)
    return loss


def ks_weights(losses_gt: Sequence[float | Tensor], beta: Sequence[Sequence[float]], teacher_loss_gt: float | Tensor,
               epoch: int, cfg) -> list[list[float]]:
    """``w_ij = beta_ij * sigma_i / n``: the weight of learner ``i`` taking from sharer ``j`` (Eqs. 22, 33)."""
    n = len(losses_gt)
    if len(beta) != n or any(len(row) != n for row in beta):
        raise ValueError(f"beta must be {n}x{n}")
    out = [[0.0] * n for _ in range(n)]
    for i in range(n):
        gate = ks_gate(losses_gt[i], teacher_loss_gt, epoch, cfg)
        for j in range(n):
            if i != j and beta[i][j] != 0.0 and gate > 0.0:
                out[i][j] = float(beta[i][j]) * gate / n
    return out


def ks_total(losses_gt: Sequence[float | Tensor], outputs: Sequence[Outputs], beta: Sequence[Sequence[float]],
             teacher_loss_gt: float | Tensor, epoch: int, *, family: str, cfg,
             scale: float = 127.0) -> tuple[list[Tensor], list[dict[str, float]]]:
    """Per-student ``KS_i`` (Eq. 33) and, per student, what the gate did this step: ``{"ks_open": 0/1,
    "ks_gap": L_GT(i) - L_GT(t), "ks_h": h}`` (for the logs). Sharers' outputs are detached."""
    if len(outputs) != len(losses_gt):
        raise ValueError("one ground-truth loss per student's outputs")
    weights = ks_weights(losses_gt, beta, teacher_loss_gt, epoch, cfg)
    h = ks_threshold(teacher_loss_gt, cfg)
    terms, info = [], []
    for i, learner in enumerate(outputs):
        first = as_outputs(family, learner)
        term = next(iter(first.values())).sum() * 0.0
        for j, sharer in enumerate(outputs):
            if weights[i][j] > 0.0:
                term = term + weights[i][j] * ks_pair_loss(family, learner, sharer, scale)
        terms.append(term)
        info.append({"ks_open": float(any(w > 0.0 for w in weights[i])),
                     "ks_gap": _scalar(losses_gt[i]) - _scalar(teacher_loss_gt), "ks_h": h})
    return terms, info
