"""Distillation losses of TSsKD (Liu et al., "Teacher-Students Knowledge Distillation for Siamese Trackers",
arXiv:1907.10586; journal version "Distilled Siamese Networks for Visual Tracking", Shen et al.), for the three
head families of :mod:`edgetrack.training.losses`.

A student ``s`` distilled from a teacher ``t`` minimises ::

    L = L_TS + lambda * L_AH + omega * L_STR  (+ sum_j w_sj * L_KS(s <- j) with other students j)

* ``L_TS`` teacher soft loss: temperature-softened KL between the teacher's and the student's classification
  distributions (times ``temp^2``), plus regression toward the teacher's boxes on teacher-positive cells;
* ``L_AH`` adaptive hard loss: the ground-truth classification loss plus the teacher-bounded regression loss
  of Chen et al. (NeurIPS 2017), ``L_b = L_reg(R_s, y)`` if ``L_reg(R_s, y) + m > L_reg(R_t, y)`` else 0;
* ``L_STR`` Siamese target response (Eqs. 14-16): attention maps ``F(U) = sum_c |U_c|`` of the template and the
  (correlation weighted) search features, each flattened and L2-normalised; per layer ``j`` the L2 norm of the
  difference (a number in [0, 2]), averaged over the batch and summed over the layers, so ``omega = 100`` weighs
  it as in the paper;
* ``L_KS`` knowledge sharing between students: :mod:`edgetrack.training.losses_ks`.

Every teacher (or peer) tensor is detached inside these functions: gradients reach the student only.
Optional feature-level terms (point-wise and pair-wise, as in the DLF options) and a 1x1 ``ChannelAdapter``
are at the end of the module.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .losses import (
    ANCHOR_FREE,
    RPN,
    SIAMFC,
    LossWeights,
    as_outputs,
    canonical_family,
    cls_loss,
    foreground_prob,
    iou_loss_map,
    masked_mean,
    pair_logits,
    per_sample_reg,
    reduce_reg,
    reg_cells,
    rpn_deltas,
    smooth_l1,
    zero_from,
)

Tensor = torch.Tensor
Outputs = Mapping[str, Tensor] | Sequence[Tensor]
FeatureSet = Mapping[str, Tensor]
GRANULARITIES = ("sample", "cell")
WEIGHT_NORMS = ("minmax", "softmax")
_WEIGHTS = LossWeights()


@dataclass(frozen=True)
class KDConfig:
    """Hyper-parameters of the TSsKD losses (paper defaults where the paper gives them).

    ``margin`` m (AH bound, 0.005), ``lam`` lambda (AH weight, 0.1), ``omega`` (STR weight, 100),
    ``temperature`` (1), ``ks_beta`` beta (discount of the intelligent student, 0.5). ``ks_h`` is the KS
    threshold *relative to the teacher's ground-truth loss* on the batch (``h = ks_h * L_GT(t)``; the paper's
    absolute 0.005 belongs to its loss scale, see :func:`edgetrack.training.losses_ks.ks_threshold`).
    ``sigma(e) = ks_sigma0 * ks_decay ** e`` is the KS weight at epoch ``e``, taken as 0 below
    ``ks_sigma_min``; ``ks_sigma0 = 1`` and ``ks_decay = 0.9`` are this module's defaults, not paper values.
    ``teacher_pos_threshold``/``teacher_topk`` choose the teacher-positive cells of the TS
    regression term, ``ah_granularity`` where the AH bound applies (``"sample"`` or ``"cell"``),
    ``str_weight_norm`` how the STR correlation weight is normalised (``"minmax"`` or ``"softmax"``).
    """

    margin: float = 0.005
    lam: float = 0.1
    omega: float = 100.0
    temperature: float = 1.0
    ks_h: float = 0.1
    ks_beta: float = 0.5
    ks_sigma0: float = 1.0
    ks_decay: float = 0.9
    ks_sigma_min: float = 1e-4
    teacher_pos_threshold: float = 0.5
    teacher_topk: int | None = None
    ah_granularity: str = "sample"
    str_weight_norm: str = "minmax"
    weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0")
        if not 0.0 < self.ks_decay <= 1.0:
            raise ValueError("ks_decay must be in (0, 1]")
        if self.ah_granularity not in GRANULARITIES:
            raise ValueError(f"ah_granularity must be one of {GRANULARITIES}, got {self.ah_granularity!r}")
        if self.str_weight_norm not in WEIGHT_NORMS:
            raise ValueError(f"str_weight_norm must be one of {WEIGHT_NORMS}, got {self.str_weight_norm!r}")
        if self.teacher_topk is not None and self.teacher_topk < 1:
            raise ValueError("teacher_topk must be >= 1 or None")


def _cls_key(family: str) -> str:
    return "response" if canonical_family(family) == SIAMFC else "cls"


# -------------------------------------------------------------------------------------- teacher soft (TS)
def soft_cls_kl(family: str, student: Tensor, teacher: Tensor, temperature: float = 1.0) -> Tensor:
    """``temp^2 * mean_cells KL(P_t^temp || P_s^temp)``, the soft-target term of Hinton et al. per cell.

    Anchor-free/RPN: ``P = softmax([bg, fg] / temp)`` per cell (per anchor for RPN), ``KL = sum_c p_t,c
    (ln p_t,c - ln p_s,c)``. SiamFC: the Bernoulli KL of ``sigmoid(z / temp)``. Mean over all cells/anchors.
    """
    fam, t = canonical_family(family), float(temperature)
    teacher = teacher.detach()
    if fam == SIAMFC:
        zs, zt = student / t, teacher / t
        pt = torch.sigmoid(zt)
        kl = (pt * (F.logsigmoid(zt) - F.logsigmoid(zs))
              + (1.0 - pt) * (F.logsigmoid(-zt) - F.logsigmoid(-zs)))
    else:
        log_s = F.log_softmax(pair_logits(fam, student) / t, dim=-1)
        log_t = F.log_softmax(pair_logits(fam, teacher) / t, dim=-1)
        kl = (log_t.exp() * (log_t - log_s)).sum(dim=-1)
    return kl.mean() * (t * t)


def teacher_positive_mask(family: str, teacher_cls: Tensor, threshold: float = 0.5,
                          topk: int | None = None) -> Tensor:
    """Cells where the teacher sees the target: ``p_fg > threshold``, or the ``topk`` highest ``p_fg`` per sample.

    Returns a bool map ``(B, S, S)`` (anchor-free) or ``(B, K, S, S)`` (RPN); ``p_fg`` at temperature 1.
    The threshold can leave a sample without cells (an untrained teacher); ``topk`` always selects some.
    """
    prob = foreground_prob(family, teacher_cls.detach())
    if topk is None:
        return prob > threshold
    flat = prob.reshape(prob.shape[0], -1)
    idx = flat.topk(min(int(topk), flat.shape[1]), dim=1).indices
    return torch.zeros_like(flat, dtype=torch.bool).scatter_(1, idx, True).reshape(prob.shape)


def soft_reg_loss(family: str, student_reg: Tensor, teacher_reg: Tensor, mask: Tensor,
                  weights: LossWeights = _WEIGHTS) -> Tensor:
    """Regression toward the teacher on ``mask`` cells (mean over them).

    Anchor-free: IoU loss (``weights.iou_type``) between the student's and the teacher's ltrb boxes at each
    point; RPN: smooth-L1 between the deltas, summed over ``dx, dy, dw, dh``, per anchor.
    """
    fam = canonical_family(family)
    teacher_reg = teacher_reg.detach()
    if fam == ANCHOR_FREE:
        cells = iou_loss_map(student_reg, teacher_reg, weights.iou_type)
    elif fam == RPN:
        cells = smooth_l1(rpn_deltas(student_reg) - rpn_deltas(teacher_reg), weights.smooth_l1_beta).sum(dim=1)
    else:
        raise ValueError("siamfc has no regression branch")
    return masked_mean(cells, mask)


def teacher_soft_loss(family: str, student: Outputs, teacher: Outputs,
                      cfg: KDConfig = KDConfig()) -> dict[str, Tensor]:
    """``L_TS = w_cls * soft_cls_kl + w_reg * soft_reg_loss`` -> ``{"cls", "reg", "total"}`` (no reg for siamfc).

    The regression term uses the teacher-positive cells of :func:`teacher_positive_mask`
    (``cfg.teacher_pos_threshold``, default ``p_fg > 0.5``, or ``cfg.teacher_topk``): elsewhere the
    teacher's boxes are not meant to describe the target.
    """
    fam = canonical_family(family)
    s, t = as_outputs(fam, student), as_outputs(fam, teacher)
    key = _cls_key(fam)
    out = {"cls": soft_cls_kl(fam, s[key], t[key], cfg.temperature)}
    total = cfg.weights.cls * out["cls"]
    if fam != SIAMFC:
        mask = teacher_positive_mask(fam, t["cls"], cfg.teacher_pos_threshold, cfg.teacher_topk)
        out["reg"] = soft_reg_loss(fam, s["reg"], t["reg"], mask, cfg.weights)
        total = total + cfg.weights.reg * out["reg"]
    out["total"] = total
    return out


# ------------------------------------------------------------------------------------- adaptive hard (AH)
def bounded_gate(student_loss: Tensor, teacher_loss: Tensor, margin: float) -> Tensor:
    """Chen et al.'s bound: True where ``L_s + m > L_t`` (the student does not beat the teacher by ``m``)."""
    return (student_loss.detach() + margin) > teacher_loss.detach()


def teacher_bounded_reg(family: str, student_reg: Tensor, teacher_reg: Tensor, targets: Mapping[str, Tensor],
                        margin: float = 0.005, granularity: str = "sample",
                        weights: LossWeights = _WEIGHTS) -> tuple[Tensor, Tensor, Tensor]:
    """``L_b``: the student's ground-truth regression loss where ``L_reg(R_s, y) + m > L_reg(R_t, y)``, else 0.

    ``granularity="sample"`` compares each sample's weighted mean loss over its positive cells and keeps or
    drops the whole sample; ``"cell"`` compares every positive cell (anchor) on its own. The kept cells are
    reduced like the ground-truth loss (:func:`~edgetrack.training.losses.reduce_reg`), so with every gate
    open ``L_b`` equals it. Returns ``(L_b, unbounded loss (detached), fraction of positive cells kept)``.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    ls, w = reg_cells(family, student_reg, targets, weights)
    with torch.no_grad():
        lt, _ = reg_cells(family, teacher_reg.detach(), targets, weights)
    if granularity == "cell":
        gate = bounded_gate(ls, lt, margin)
    else:
        gate = bounded_gate(per_sample_reg(ls, w), per_sample_reg(lt, w), margin)
        gate = gate.reshape(-1, *([1] * (ls.dim() - 1))).expand_as(ls)
    loss = reduce_reg(family, torch.where(gate, ls, torch.zeros_like(ls)), w)
    positive = w > 0
    kept = (gate & positive).sum().to(ls.dtype) / positive.sum().clamp(min=1).to(ls.dtype)
    return loss, reduce_reg(family, ls, w).detach(), kept


def adaptive_hard_loss(family: str, student: Outputs, teacher: Outputs, targets: Mapping[str, Tensor],
                       cfg: KDConfig = KDConfig()) -> dict[str, Tensor]:
    """``L_AH = w_cls * L_cls(P_s, y_cls) + w_reg * L_b(R_s, R_t, y_reg)``.

    Returns ``{"cls", "reg", "total", "reg_unbounded", "kept"}`` (siamfc: ``{"cls", "total"}``); see
    :func:`teacher_bounded_reg` for ``L_b`` (margin ``cfg.margin``, granularity ``cfg.ah_granularity``).
    """
    fam = canonical_family(family)
    s = as_outputs(fam, student)
    out = {"cls": cls_loss(fam, s, targets)}
    total = cfg.weights.cls * out["cls"]
    if fam != SIAMFC:
        t = as_outputs(fam, teacher)
        out["reg"], out["reg_unbounded"], out["kept"] = teacher_bounded_reg(
            fam, s["reg"], t["reg"], targets, cfg.margin, cfg.ah_granularity, cfg.weights)
        total = total + cfg.weights.reg * out["reg"]
    out["total"] = total
    return out


# ------------------------------------------------------------------------ Siamese target response (STR)
def response_map(features: Tensor) -> Tensor:
    """``F(U) = sum_c |U_c|``: ``(B, C, H, W)`` -> ``(B, H, W)`` (an attention map; removes channel mismatch)."""
    return features.abs().sum(dim=1)


def xcorr_same(search: Tensor, template: Tensor) -> Tensor:
    """Correlation of ``search (B, C, H, W)`` with ``template (B or 1, C, h, w)`` as kernel -> ``(B, 1, H, W)``.

    Zero padding ``(h-1)//2`` before and ``h-1-(h-1)//2`` after (likewise for ``w``) keeps the search size, so
    position ``(i, j)`` scores the template centred there (half a cell off for even kernels). One grouped conv.
    """
    b, c, h, w = search.shape
    template = template.expand(b, -1, -1, -1)
    kh, kw = template.shape[-2:]
    pad = ((kw - 1) // 2, kw - 1 - (kw - 1) // 2, (kh - 1) // 2, kh - 1 - (kh - 1) // 2)
    x = F.pad(search, pad).reshape(1, b * c, h + kh - 1, w + kw - 1)
    return F.conv2d(x, template.reshape(b, c, kh, kw), groups=b).reshape(b, 1, h, w)


def normalise_weight(corr: Tensor, mode: str = "minmax", eps: float = 1e-12) -> Tensor:
    """Per-sample spatial weight from ``(B, 1, H, W)``: min-max to ``[0, 1]``, or softmax over positions."""
    flat = corr.flatten(1)
    if mode == "softmax":
        out = torch.softmax(flat, dim=1)
    elif mode == "minmax":
        low, high = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
        out = (flat - low) / (high - low).clamp(min=eps)
    else:
        raise ValueError(f"weight normalisation must be one of {WEIGHT_NORMS}, got {mode!r}")
    return out.reshape(corr.shape)


def search_response_map(search: Tensor, template: Tensor, mode: str = "minmax") -> Tensor:
    """Search-branch response ``F(X) * norm(X (*) Z)``: ``(B, H, W)``; the weight is each network's own."""
    return response_map(search) * normalise_weight(xcorr_same(search, template), mode)[:, 0]


def attention_distance(student_map: Tensor, teacher_map: Tensor, eps: float = 1e-12) -> Tensor:
    """``mean_batch || a_s / ||a_s||_2 - a_t / ||a_t||_2 ||_2`` (the paper's STR distance, in [0, 2]).

    Maps ``(B, H, W)``; the student map is resized (bilinear) to the teacher's size first.
    """
    teacher_map = teacher_map.detach()
    if student_map.shape[-2:] != teacher_map.shape[-2:]:
        student_map = F.interpolate(student_map.unsqueeze(1), size=teacher_map.shape[-2:], mode="bilinear",
                                    align_corners=False)[:, 0]
    s = F.normalize(student_map.flatten(1), dim=1, eps=eps)
    t = F.normalize(teacher_map.flatten(1), dim=1, eps=eps)
    return ((s - t).pow(2).sum(dim=1) + 1e-16).sqrt().mean()  # finite gradient at zero distance


def str_loss(student: FeatureSet | Sequence[FeatureSet], teacher: FeatureSet | Sequence[FeatureSet],
             weight_norm: str = "minmax") -> Tensor:
    """``L_STR = sum_j [d(F(Z_s^j), F(Z_t^j)) + d(F_w(X_s^j), F_w(X_t^j))]`` with ``d`` :func:`attention_distance`.

    Each layer is a mapping ``{"zf": (B, C, Hz, Wz), "xf": (B, C, Hx, Wx)}`` (``feature_maps(z, x)`` of the
    networks' ``forward_train``); student and teacher may differ in channels and size. The template map is
    unweighted; the search map is weighted by :func:`search_response_map` and skipped for a layer where either
    side has no ``"xf"``.
    """
    s_layers = [student] if isinstance(student, Mapping) else list(student)
    t_layers = [teacher] if isinstance(teacher, Mapping) else list(teacher)
    if len(s_layers) != len(t_layers) or not s_layers:
        raise ValueError(f"STR needs matching non-empty layer lists, got {len(s_layers)} and {len(t_layers)}")
    total = None
    for s, t in zip(s_layers, t_layers):
        if "zf" not in s or "zf" not in t:
            raise KeyError("every STR layer needs 'zf' (template features) for student and teacher")
        t_zf = t["zf"].detach()
        term = attention_distance(response_map(s["zf"]), response_map(t_zf))
        if "xf" in s and "xf" in t:
            term = term + attention_distance(search_response_map(s["xf"], s["zf"], weight_norm),
                                        search_response_map(t["xf"].detach(), t_zf, weight_norm))
        total = term if total is None else total + term
    return total


# ------------------------------------------------------------------------------------------------ overall
HARD = ("ah", "gt", "none")


def total_student_loss(family: str, student: Outputs, teacher: Outputs, targets: Mapping[str, Tensor], *,
                       student_feats: FeatureSet | Sequence[FeatureSet] | None = None,
                       teacher_feats: FeatureSet | Sequence[FeatureSet] | None = None,
                       ks: Tensor | None = None, cfg: KDConfig = KDConfig(), use_ts: bool = True,
                       hard: str = "ah") -> dict[str, Tensor]:
    """``L = L_TS + lambda * L_hard + omega * L_STR + KS`` and its named terms (for logging).

    ``hard``: ``"ah"`` (the teacher-bounded adaptive hard loss), ``"gt"`` (the plain ground-truth loss, Table 4's
    GT) or ``"none"``; ``use_ts=False`` drops ``L_TS`` (Table 4's combinations). ``ks`` is this student's entry
    of :func:`edgetrack.training.losses_ks.ks_total` (already weighted). STR is skipped (0) without features.
    Keys: ``ts_cls, ts, ah_cls, ah, str, ks, gt, total`` plus ``ts_reg, ah_reg, ah_kept`` for families with
    regression; ``gt`` (detached) is the plain ground-truth tracking loss (the gate of knowledge sharing).
    """
    if hard not in HARD:
        raise ValueError(f"hard must be one of {HARD}, got {hard!r}")
    ts = teacher_soft_loss(family, student, teacher, cfg)
    ah = adaptive_hard_loss(family, student, teacher, targets, cfg)
    anchor = ts["total"]
    st = (str_loss(student_feats, teacher_feats, cfg.str_weight_norm)
          if student_feats is not None and teacher_feats is not None else zero_from(anchor))
    ks_term = zero_from(anchor) if ks is None else ks
    out = {"ts_cls": ts["cls"], "ts": ts["total"], "ah_cls": ah["cls"], "ah": ah["total"], "str": st, "ks": ks_term}
    gt = cfg.weights.cls * ah["cls"]
    if "reg" in ah:
        out.update(ts_reg=ts["reg"], ah_reg=ah["reg"], ah_kept=ah["kept"])
        gt = gt + cfg.weights.reg * reduce_reg(family, *reg_cells(family, as_outputs(family, student)["reg"],
                                                                  targets, cfg.weights))
    out["gt"] = gt.detach()
    hard_term = {"ah": ah["total"], "gt": gt, "none": zero_from(anchor)}[hard]
    out["total"] = (ts["total"] if use_ts else zero_from(anchor)) + cfg.lam * hard_term + cfg.omega * st + ks_term
    return out
