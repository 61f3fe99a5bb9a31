"""Ground-truth tracking losses for the three head families, and the primitives the distillation terms share.

Families (``family`` argument; aliases in parentheses):

* ``"nanotrack"`` (``"anchor_free"``, ``"ban"``): ``cls (B, 2, S, S)`` logits ``[bg, fg]`` and
  ``reg (B, 4, S, S)`` distances ``(l, t, r, b)`` in search-crop pixels from each score-map point;
* ``"siamrpn"`` (``"rpn"``): ``cls (B, 2K, S, S)`` (channels ``[0:K]`` background, ``[K:2K]`` foreground) and
  ``reg (B, 4K, S, S)`` laid out ``[dx*K, dy*K, dw*K, dh*K]``;
* ``"siamfc"``: ``response (B, 1, R, R)`` logits.

Targets are built by the data pipeline (points and anchors as in :mod:`edgetrack.runtime.postprocess`); the
losses themselves never need the point grid: an ltrb IoU compares two boxes anchored at the same point.

Regression losses are written per cell (``cell_loss``) with a per-cell weight (``cell_weight``) and reduced by
:func:`reduce_reg`, so the distillation code can gate individual cells or samples and reduce them exactly like
the ground-truth loss.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

ANCHOR_FREE, RPN, SIAMFC = "anchor_free", "rpn", "siamfc"
_ALIASES = {"nanotrack": ANCHOR_FREE, "anchor_free": ANCHOR_FREE, "ban": ANCHOR_FREE,
            "siamrpn": RPN, "rpn": RPN, "siamfc": SIAMFC}
_OUTPUT_NAMES = {ANCHOR_FREE: ("cls", "reg"), RPN: ("cls", "reg"), SIAMFC: ("response",)}
IOU_TYPES = ("iou", "linear_iou", "giou")


def canonical_family(family: str) -> str:
    """``"anchor_free"``, ``"rpn"`` or ``"siamfc"`` for a family name or alias; ``ValueError`` otherwise."""
    try:
        return _ALIASES[family]
    except KeyError:
        raise ValueError(f"unknown head family {family!r}; expected one of {sorted(_ALIASES)}") from None


def as_outputs(family: str, outputs: Mapping[str, Tensor] | Sequence[Tensor]) -> dict[str, Tensor]:
    """Head outputs as a dict: a mapping is checked, a tuple (``net(z, x)``) is named by the family."""
    names = _OUTPUT_NAMES[canonical_family(family)]
    if isinstance(outputs, Mapping):
        missing = [n for n in names if n not in outputs]
        if missing:
            raise KeyError(f"{family} outputs need {names}, missing {missing}")
        return {n: outputs[n] for n in names}
    if len(outputs) != len(names):
        raise ValueError(f"{family} outputs are {names}, got {len(outputs)} tensors")
    return dict(zip(names, outputs))


@dataclass(frozen=True)
class LossWeights:
    """Weights and variants of the ground-truth tracking loss ``total = cls * L_cls + reg * L_reg``.

    ``iou_type`` (anchor-free regression): ``"linear_iou"`` ``1 - IoU`` (default), ``"iou"`` ``-ln IoU``
    (UnitBox) or ``"giou"`` ``1 - GIoU``. ``smooth_l1_beta`` (RPN regression): the quadratic zone of the
    smooth-L1 loss; ``0`` gives the plain L1 of pysot's ``weight_l1_loss``. pysot weights SiamRPN's
    regression with ``LOC_WEIGHT = 1.2``; pass ``reg=1.2`` to match it.
    """

    cls: float = 1.0
    reg: float = 1.0
    iou_type: str = "linear_iou"
    smooth_l1_beta: float = 1.0

    def __post_init__(self) -> None:
        if self.iou_type not in IOU_TYPES:
            raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {self.iou_type!r}")
        if self.smooth_l1_beta < 0:
            raise ValueError("smooth_l1_beta must be >= 0")


# ----------------------------------------------------------------------------------------------- primitives
def zero_from(t: Tensor) -> Tensor:
    """A scalar zero still attached to ``t``'s graph (so ``backward`` works when a term is empty)."""
    return t.sum() * 0.0


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """``sum(values[mask]) / max(|mask|, 1)``: zero (with a graph) for an empty mask; NaN-free where masked out."""
    mask = mask.to(torch.bool)
    picked = torch.where(mask, values, torch.zeros_like(values))
    return picked.sum() / mask.sum().clamp(min=1).to(values.dtype)


def smooth_l1(diff: Tensor, beta: float) -> Tensor:
    """Element-wise ``0.5 d^2 / beta`` for ``|d| < beta``, else ``|d| - 0.5 beta``; ``beta = 0`` is ``|d|``."""
    return F.smooth_l1_loss(diff, torch.zeros_like(diff), reduction="none", beta=beta)


def iou_loss_map(pred: Tensor, target: Tensor, kind: str = "linear_iou", eps: float = 1e-6) -> Tensor:
    """IoU loss of two ltrb boxes sharing each point: ``(B, 4, *)`` x ``(B, 4, *)`` -> ``(B, *)``.

    With ``A = (l+r)(t+b)``, ``I = (min l + min r)(min t + min b)``, ``U = A_p + A_t - I``, ``IoU = I / U``:
    ``"iou"`` gives ``-ln IoU`` (UnitBox), ``"linear_iou"`` ``1 - IoU``, ``"giou"`` ``1 - IoU + (C - U) / C``
    with ``C = (max l + max r)(max t + max b)`` (as SiamBAN/NanoTrack's ``IOULoss``, without its +1 smoothing).
    """
    pl, pt, pr, pb = pred.unbind(1)
    tl, tt, tr, tb = target.unbind(1)
    area_p, area_t = (pl + pr) * (pt + pb), (tl + tr) * (tt + tb)
    iw = (torch.minimum(pl, tl) + torch.minimum(pr, tr)).clamp(min=0)
    ih = (torch.minimum(pt, tt) + torch.minimum(pb, tb)).clamp(min=0)
    inter = iw * ih
    union = area_p + area_t - inter
    iou = inter / union.clamp(min=eps)
    if kind == "iou":
        return -torch.log(iou.clamp(min=eps))
    if kind == "linear_iou":
        return 1.0 - iou
    if kind == "giou":
        enclose = (torch.maximum(pl, tl) + torch.maximum(pr, tr)) * (torch.maximum(pt, tt) + torch.maximum(pb, tb))
        return 1.0 - iou + (enclose - union) / enclose.clamp(min=eps)
    raise ValueError(f"iou kind must be one of {IOU_TYPES}, got {kind!r}")


def pair_logits(family: str, cls: Tensor) -> Tensor:
    """Two-class logits ``(B, K, S, S, 2)`` ``[bg, fg]`` from an anchor-free (``K = 1``) or RPN ``cls`` map.

    RPN channels ``[0:K]``/``[K:2K]`` are pysot's ``view(B, 2, K, S, S)`` layout.
    """
    fam = canonical_family(family)
    if fam == SIAMFC:
        raise ValueError("siamfc has a one-channel response, not two-class logits")
    b, c, h, w = cls.shape
    if c % 2:
        raise ValueError(f"cls needs an even channel count ([bg, fg] halves), got {c}")
    if fam == ANCHOR_FREE and c != 2:
        raise ValueError(f"anchor-free cls must have 2 channels, got {c}")
    return cls.reshape(b, 2, c // 2, h, w).permute(0, 2, 3, 4, 1)


def foreground_prob(family: str, cls: Tensor) -> Tensor:
    """Foreground probability per cell: ``(B, S, S)`` anchor-free, ``(B, K, S, S)`` RPN, ``(B, 1, R, R)`` siamfc."""
    fam = canonical_family(family)
    if fam == SIAMFC:
        return torch.sigmoid(cls)
    prob = torch.softmax(pair_logits(fam, cls), dim=-1)[..., 1]
    return prob[:, 0] if fam == ANCHOR_FREE else prob


def rpn_deltas(reg: Tensor) -> Tensor:
    """RPN ``reg (B, 4K, S, S)`` as ``(B, 4, K, S, S)`` (pysot's ``view(B, 4, -1, S, S)``)."""
    b, c, h, w = reg.shape
    if c % 4:
        raise ValueError(f"RPN reg needs 4K channels, got {c}")
    return reg.reshape(b, 4, c // 4, h, w)


# ----------------------------------------------------------------------------------------- classification
def balanced_cross_entropy(logits: Tensor, label: Tensor) -> Tensor:
    """pysot's ``select_cross_entropy_loss``: ``0.5 * mean_pos(-ln p_fg) + 0.5 * mean_neg(-ln p_bg)``.

    ``logits (..., 2)`` ``[bg, fg]``; ``label (...)`` with 1 positive, 0 negative, -1 ignored. An empty set
    contributes 0 (its half is not redistributed, as in pysot).
    """
    logp = F.log_softmax(logits, dim=-1)
    pos = masked_mean(-logp[..., 1], label == 1)
    neg = masked_mean(-logp[..., 0], label == 0)
    return 0.5 * pos + 0.5 * neg


def balanced_bce(response: Tensor, labels: Tensor, weights: Tensor | None = None) -> Tensor:
    """SiamFC's balanced logistic loss ``sum(w * BCE(z, y)) / sum(w)``.

    ``response``/``labels``/``weights`` ``(B, 1, R, R)``; labels in {0, 1}. Without ``weights`` they are
    siamfc-pytorch's ``BalancedLoss`` weights over the batch (``1/N_pos`` on positives, ``1/N_neg`` on negatives),
    i.e. ``0.5 * mean_pos + 0.5 * mean_neg``.
    """
    labels = labels.to(response.dtype)
    bce = F.binary_cross_entropy_with_logits(response, labels, reduction="none")
    if weights is None:
        pos, neg = labels == 1, labels == 0
        weights = (pos.to(response.dtype) / pos.sum().clamp(min=1) + neg.to(response.dtype) / neg.sum().clamp(min=1))
    weights = weights.to(response.dtype)
    return (weights * bce).sum() / weights.sum().clamp(min=1e-12)


# --------------------------------------------------------------------------------------------- regression
def reg_cells(family: str, reg: Tensor, targets: Mapping[str, Tensor],
              weights: LossWeights = LossWeights()) -> tuple[Tensor, Tensor]:
    """Per-cell regression loss against the ground truth and its weight.

    * anchor-free: ``targets["reg_target"] (B, 4, S, S)`` ltrb pixels; cells ``(B, S, S)`` hold the IoU loss,
      weighted 1 where ``targets["cls_label"] == 1``;
    * RPN: ``targets["reg_target"] (B, 4, K, S, S)`` deltas; cells ``(B, K, S, S)`` hold the smooth-L1 summed
      over ``dx, dy, dw, dh``, weighted by ``targets["reg_weight"] (B, K, S, S)``.
    """
    fam = canonical_family(family)
    if fam == ANCHOR_FREE:
        cells = iou_loss_map(reg, targets["reg_target"].to(reg.dtype), weights.iou_type)
        return cells, (targets["cls_label"] == 1).to(reg.dtype)
    if fam == RPN:
        diff = rpn_deltas(reg) - targets["reg_target"].to(reg.dtype)
        return smooth_l1(diff, weights.smooth_l1_beta).sum(dim=1), targets["reg_weight"].to(reg.dtype)
    raise ValueError("siamfc has no regression branch")


def reduce_reg(family: str, cell_loss: Tensor, cell_weight: Tensor) -> Tensor:
    """Batch regression loss from per-cell values.

    Anchor-free: mean over the positive cells of the batch (SiamBAN's ``select_iou_loss``);
    RPN: ``sum(w * L) / B`` (pysot's ``weight_l1_loss``, whose weights sum to 1 per sample).
    """
    if canonical_family(family) == ANCHOR_FREE:
        return masked_mean(cell_loss, cell_weight > 0)
    masked = torch.where(cell_weight > 0, cell_loss * cell_weight, torch.zeros_like(cell_loss))
    return masked.sum() / cell_loss.shape[0]


def per_sample_reg(cell_loss: Tensor, cell_weight: Tensor) -> Tensor:
    """``(B,)`` weighted mean ``sum(w L) / sum(w)`` over each sample's cells (0 for a sample without weight)."""
    masked = torch.where(cell_weight > 0, cell_loss * cell_weight, torch.zeros_like(cell_loss))
    dims = tuple(range(1, cell_loss.dim()))
    return masked.sum(dim=dims) / cell_weight.sum(dim=dims).clamp(min=1e-12)


# --------------------------------------------------------------------------------------------- dispatcher
def cls_loss(family: str, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> Tensor:
    """Ground-truth classification loss of one family (balanced CE, or balanced BCE for siamfc)."""
    fam = canonical_family(family)
    if fam == SIAMFC:
        return balanced_bce(outputs["response"], targets["labels"], targets.get("weights"))
    label = targets["cls_label"]
    if fam == ANCHOR_FREE:
        label = label.unsqueeze(1)
    return balanced_cross_entropy(pair_logits(fam, outputs["cls"]), label)


def tracking_loss(family: str, outputs: Mapping[str, Tensor] | Sequence[Tensor], targets: Mapping[str, Tensor],
                  weights: LossWeights = LossWeights()) -> dict[str, Tensor]:
    """Ground-truth loss ``{"cls", "reg", "total"}`` (no ``"reg"`` for siamfc); ``total = w_cls L_cls + w_reg L_reg``.

    ``outputs``: the head outputs (dict or ``net(z, x)`` tuple). ``targets``:

    * anchor-free: ``cls_label (B, S, S)`` in {1, 0, -1}, ``reg_target (B, 4, S, S)`` ltrb crop pixels;
    * RPN: ``cls_label (B, K, S, S)`` in {1, 0, -1}, ``reg_target (B, 4, K, S, S)``, ``reg_weight (B, K, S, S)``;
    * siamfc: ``labels (B, 1, R, R)`` in {0, 1}, optional ``weights (B, 1, R, R)``.
    """
    fam = canonical_family(family)
    out = as_outputs(fam, outputs)
    result = {"cls": cls_loss(fam, out, targets)}
    total = weights.cls * result["cls"]
    if fam != SIAMFC:
        result["reg"] = reduce_reg(fam, *reg_cells(fam, out["reg"], targets, weights))
        total = total + weights.reg * result["reg"]
    result["total"] = total
    return result
