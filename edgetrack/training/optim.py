"""The optimizer of a training run and its learning-rate schedule."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adamw"
    lr: float = 1e-3
    lr_end: float = 1e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    grad_clip: float = 10.0


def lr_at(step: int, cfg: OptimConfig, total: int) -> float:
    """Linear warm-up, then exponential decay from ``lr`` to ``lr_end`` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, total - cfg.warmup_steps)
    return cfg.lr * math.exp(math.log(cfg.lr_end / cfg.lr) * min(1.0, (step - cfg.warmup_steps) / span))


def make_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.name!r} (sgd or adamw)")
