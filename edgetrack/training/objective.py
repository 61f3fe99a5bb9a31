"""What each student minimises at a step: NOKD (ground truth only), TSKD (teacher-student) or TSsKD (plus
student-student knowledge sharing), with the AH and STR terms switchable for the ablation."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from .losses import tracking_loss
from .losses_dlf import pairwise_feature_loss, tap_feature_loss
from .losses_kd import KDConfig, ks_total, teacher_soft_loss, total_student_loss, two_student_beta

MODES = ("nokd", "tskd", "tsskd", "mimic")


@dataclass(frozen=True)
class ObjectiveConfig:
    mode: str = "tsskd"
    use_ah: bool = True
    use_str: bool = True
    intelligent: int = 0  # index of the intelligent student (the others are dull)
    feat_weight: float = 0.0  # DLF point-wise term at every matching trunk output (pruned students)
    pair_weight: float = 0.0  # DLF pair-wise term on the search features (pruned students)
    kd: KDConfig = field(default_factory=KDConfig)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")


def _scalarise(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v.detach()) for k, v in terms.items() if torch.is_tensor(v) and v.dim() == 0}


def ground_truth_losses(family: str, outputs: list, targets: dict) -> list[dict[str, torch.Tensor]]:
    return [tracking_loss(family, out, targets) for out in outputs]


def step_losses(cfg: ObjectiveConfig, family: str, epoch: int, warmup: bool, targets: dict,
                teacher_out, teacher_feats, outputs: list, feats: list) -> list[dict[str, torch.Tensor]]:
    """Per-student loss terms (each dict has ``total``); the teacher's tensors are treated as constants.

    ``mimic`` (the first stage for students cut from the teacher) uses the teacher's outputs and features only:
    no ground truth, so every frame of every video is usable."""
    if cfg.mode == "mimic":
        terms = [dict(teacher_soft_loss(family, out, teacher_out, cfg.kd)) for out in outputs]
        return add_feature_terms(cfg, terms, feats, teacher_feats)
    if cfg.mode == "nokd" or warmup or teacher_out is None:
        return add_feature_terms(cfg, ground_truth_losses(family, outputs, targets), feats, teacher_feats)
    kd = cfg.kd if cfg.use_ah else dataclasses.replace(cfg.kd, lam=0.0)
    use_feats = cfg.use_str and teacher_feats is not None
    terms = [total_student_loss(family, out, teacher_out, targets, student_feats=f if use_feats else None,
                                teacher_feats=teacher_feats if use_feats else None, cfg=kd)
             for out, f in zip(outputs, feats)]
    if cfg.mode == "tsskd" and len(outputs) > 1:
        with torch.no_grad():
            teacher_gt = tracking_loss(family, teacher_out, targets)["total"]
        beta = _beta_matrix(len(outputs), cfg.intelligent, kd.ks_beta)
        ks = ks_total([t["gt"] for t in terms], outputs, beta, epoch, family=family, cfg=kd,
                      teacher_loss_gt=teacher_gt)
        for t, k in zip(terms, ks):
            t["ks"] = k
            t["total"] = t["total"] + k
    return add_feature_terms(cfg, terms, feats, teacher_feats)


def add_feature_terms(cfg: ObjectiveConfig, terms: list[dict], feats: list, teacher_feats) -> list[dict]:
    """DLF point-wise (every trunk tap) and pair-wise (search features) terms for students with taps."""
    if not (cfg.feat_weight or cfg.pair_weight) or teacher_feats is None:
        return terms
    for t, f in zip(terms, feats):
        if not f or "teacher_taps" not in f:
            continue
        t["feat"] = tap_feature_loss(list(f["z_taps"]) + list(f["x_taps"]), f["teacher_taps"])
        t["pair"] = pairwise_feature_loss(f["xf"], teacher_feats["xf"])
        t["total"] = t["total"] + cfg.feat_weight * t["feat"] + cfg.pair_weight * t["pair"]
    return terms


def _beta_matrix(n: int, intelligent: int, beta: float) -> list[list[float]]:
    """Students learn from every other student; those learning *into* the intelligent one are discounted."""
    if n == 2:
        return two_student_beta(beta, intelligent)
    return [[0.0 if i == j else (beta if i == intelligent else 1.0) for j in range(n)] for i in range(n)]


def log_values(names: list[str], terms: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    out = {}
    for name, t in zip(names, terms):
        out.update({f"{name}/{k}": v for k, v in _scalarise(t).items()})
    return out
