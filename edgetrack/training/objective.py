"""What each student minimises at a step: NOKD (ground truth only), TSKD (teacher-student) or TSsKD (plus
student-student knowledge sharing), with the AH and STR terms switchable for the ablation."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from .losses import tracking_loss
from .losses_kd import KDConfig, ks_total, total_student_loss, two_student_beta

MODES = ("nokd", "tskd", "tsskd")


@dataclass(frozen=True)
class ObjectiveConfig:
    mode: str = "tsskd"
    use_ah: bool = True
    use_str: bool = True
    intelligent: int = 0  # index of the intelligent student (the others are dull)
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
    """Per-student loss terms (each dict has ``total``); the teacher's tensors are treated as constants."""
    if cfg.mode == "nokd" or warmup or teacher_out is None:
        return ground_truth_losses(family, outputs, targets)
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
