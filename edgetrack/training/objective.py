"""What each student minimises at a step: NOKD (ground truth only), TSKD (teacher-student) or TSsKD (plus
student-student knowledge sharing), with the AH and STR terms switchable for the ablation."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .losses import tracking_loss
from .losses_dlf import pairwise_feature_loss, tap_feature_loss
from .losses_kd import HARD, KDConfig, teacher_soft_loss, total_student_loss
from .losses_ks import beta_matrix, ks_total

MODES = ("nokd", "tskd", "tsskd", "mimic")


@dataclass(frozen=True)
class ObjectiveConfig:
    """``hard``: ``ah`` (adaptive hard), ``gt`` (plain ground truth) or ``none``; empty means ``ah`` when
    ``use_ah`` else ``none``. ``use_ts=False`` drops the teacher soft term (the paper's Table 4 combinations).
    ``intelligent``: index (in ``students``) of the intelligent student, the one whose learning from the others
    is discounted by ``kd.ks_beta``."""

    mode: str = "tsskd"
    use_ah: bool = True
    use_str: bool = True
    use_ts: bool = True
    hard: str = ""
    intelligent: int = 0  # index of the intelligent student (the others are dull)
    feat_weight: float = 0.0  # DLF point-wise term at every matching trunk output (pruned students)
    pair_weight: float = 0.0  # DLF pair-wise term on the search features (pruned students)
    kd: KDConfig = field(default_factory=KDConfig)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.hard and self.hard not in HARD:
            raise ValueError(f"objective.hard must be one of {HARD}, got {self.hard!r}")

    @property
    def hard_term(self) -> str:
        return self.hard or ("ah" if self.use_ah else "none")


def _scalarise(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v.detach()) for k, v in terms.items() if torch.is_tensor(v) and v.dim() == 0}


def ground_truth_losses(family: str, outputs: list, targets: dict) -> list[dict[str, torch.Tensor]]:
    return [tracking_loss(family, out, targets) for out in outputs]


def str_layers(f: dict, teacher_feats: dict) -> tuple[list[dict], list[dict]]:
    """STR layers of one student: its final features plus, for students cut from the teacher, the matched trunk
    outputs listed in ``f["str_taps"]`` (the end of every stage at stride >= 8)."""
    s_layers = [{"zf": f["zf"], "xf": f["xf"]}] if "xf" in f else [{"zf": f["zf"]}]
    t_layers = [{k: teacher_feats[k] for k in s_layers[0]}]
    k = len(f.get("z_taps", ()))
    for m in f.get("str_taps", ()):
        s_layers.append({"zf": f["z_taps"][m], "xf": f["x_taps"][m]})
        t_layers.append({"zf": f["teacher_taps"][m], "xf": f["teacher_taps"][k + m]})
    return s_layers, t_layers


def step_losses(cfg: ObjectiveConfig, family: str, epoch: int, warmup: bool, targets: dict,
                teacher_out, teacher_feats, outputs: list, feats: list,
                scale: float = 127.0) -> list[dict[str, torch.Tensor]]:
    """Per-student loss terms (each dict has ``total``); the teacher's tensors are treated as constants.

    ``mimic`` (the first stage for students cut from the teacher) uses the teacher's outputs and features only:
    no ground truth, so every frame of every video is usable. With knowledge sharing each student's dict also
    holds ``ks_open`` (1 when its gate opened this step), ``ks_gap`` and ``ks_h``. ``scale``: the exemplar size
    (the unit of the anchor-free KS regression term)."""
    if cfg.mode == "mimic":
        terms = [dict(teacher_soft_loss(family, out, teacher_out, cfg.kd)) for out in outputs]
        return add_feature_terms(cfg, terms, feats, teacher_feats)
    if cfg.mode == "nokd" or warmup or teacher_out is None:
        return add_feature_terms(cfg, ground_truth_losses(family, outputs, targets), feats, teacher_feats)
    kd = cfg.kd
    use_feats = cfg.use_str and teacher_feats is not None
    terms = []
    for out, f in zip(outputs, feats):
        layers = str_layers(f, teacher_feats) if use_feats else (None, None)
        terms.append(total_student_loss(family, out, teacher_out, targets, student_feats=layers[0],
                                        teacher_feats=layers[1], cfg=kd, use_ts=cfg.use_ts, hard=cfg.hard_term))
    if cfg.mode == "tsskd" and len(outputs) > 1:
        with torch.no_grad():
            teacher_gt = tracking_loss(family, teacher_out, targets)["total"]
        beta = beta_matrix(len(outputs), cfg.intelligent, kd.ks_beta)
        ks, info = ks_total([t["gt"] for t in terms], outputs, beta, teacher_gt, epoch, family=family, cfg=kd,
                            scale=scale)
        for t, k, i in zip(terms, ks, info):
            t["ks"] = k
            t["total"] = t["total"] + k
            t.update({key: torch.tensor(v) for key, v in i.items()})
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


def log_values(names: list[str], terms: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    out = {}
    for name, t in zip(names, terms):
        out.update({f"{name}/{k}": v for k, v in _scalarise(t).items()})
    return out
