"""Task-specific self-distillation (after FARTrack): a ``vit``-family tracker compressed into a shallower and/or
narrower one of the same family.

* Layers: student block ``i`` of ``N`` learns the teacher's tokens after block ``ceil((i + 1) D / N) - 1`` of
  ``D`` (the same relative depth, the last on the last), so no layer pairs are chosen by hand. A narrower student
  maps its tokens to the teacher's width with one linear layer per block (training only).
* Task-relevant tokens: every template token, and the search tokens weighted by ``1 + focus * p`` where ``p`` is
  the teacher's score at that token (normalised to a peak of 1): the tokens on and around the target count most.
  Each layer's weighted squared error is divided by the mean square of the teacher's tokens there.
* Head outputs as soft targets: binary cross-entropy to the teacher's score map, and L1 to its size and offset
  maps weighted by the teacher's score.
* A student of the teacher's width starts from the teacher's weights (patch embedding, position embeddings, final
  norm, centre head, and its blocks from the matching teacher blocks, or with ``init_blocks: first`` from the
  teacher's first blocks); a narrower one starts from scratch.

The run writes ``student.safetensors`` (a normal edgetrack checkpoint), ``state.pt`` (resumable), ``log.csv``,
``config.json``. Same data, logging and CUDA path (mixed precision) as ``edgetrack-train distill``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import InputError
from ..models.io import load_checkpoint, save_checkpoint
from ..models.registry import build_model
from ..spec import TrackerSpec
from .checkpointing import load_state, rng_state, save_state, set_rng_state
from .logs import TrainLog
from .trainer import DataConfig, OptimConfig, RunSettings, _StopAtStepBoundary, lr_at, make_optimizer, normalise


@dataclass(frozen=True)
class SelfDistillConfig(RunSettings):
    out: str = "runs/selfdistill"
    teacher: str = ""
    depth: int = 2
    width: int = 0  # 0: the teacher's width
    heads: int = 0  # 0: the teacher's heads (must divide the width)
    init_from_teacher: bool = True
    init_blocks: str = "matching"  # student block i from the teacher block it learns ("matching") or block i ("first")
    focus: float = 4.0
    token_weight: float = 1.0
    score_weight: float = 1.0
    box_weight: float = 1.0
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-4, lr_end=5e-5, warmup_steps=20))
    data: DataConfig = field(default_factory=DataConfig)


def matching_layers(student_depth: int, teacher_depth: int) -> list[int]:
    """The teacher block each student block learns from: the same relative depth, the last on the last."""
    if not 1 <= student_depth <= teacher_depth:
        raise InputError(f"--depth must be between 1 and the teacher's {teacher_depth} blocks, got {student_depth}")
    return [math.ceil((i + 1) * teacher_depth / student_depth) - 1 for i in range(student_depth)]


def student_spec(teacher: TrackerSpec, depth: int, width: int = 0, heads: int = 0) -> TrackerSpec:
    """The teacher's spec with ``depth`` blocks and, when given, another width and head count."""
    if teacher.family != "vit":
        raise InputError(f"self-distillation compresses vit-family trackers; the teacher is {teacher.family!r}")
    arch = dict(teacher.arch)
    width = width or int(arch["width"])
    heads = heads or int(arch["heads"])
    if width % heads:
        raise InputError(f"width {width} is not a multiple of {heads} attention heads")
    arch.update(depth=int(depth), width=int(width), heads=int(heads))
    arch["embed_channels"] = [*arch["embed_channels"][:-1], int(width)]
    return teacher.with_(arch=arch, name=f"{teacher.name or 'vit'}-d{depth}w{width}")


def init_from_teacher(student: nn.Module, teacher: nn.Module, layers: list[int]) -> None:
    """Copy every tensor of the same shape: shared parts by name, block ``i`` from teacher block ``layers[i]``."""
    t_state = teacher.state_dict()
    new = {}
    for key, value in student.state_dict().items():
        src = key
        if key.startswith("blocks."):
            _, i, rest = key.split(".", 2)
            src = f"blocks.{layers[int(i)]}.{rest}"
        if src in t_state and t_state[src].shape == value.shape:
            new[key] = t_state[src].clone()
    student.load_state_dict(new, strict=False)


class Projectors(nn.Module):
    """Student width -> teacher width per student block (identity when the widths agree)."""

    def __init__(self, depth: int, s_width: int, t_width: int) -> None:
        super().__init__()
        same = s_width == t_width
        self.maps = nn.ModuleList(nn.Identity() if same else nn.Linear(s_width, t_width) for _ in range(depth))

    def forward(self, i: int, tokens: torch.Tensor) -> torch.Tensor:
        return self.maps[i](tokens)


def token_weights(t_score: torch.Tensor, n_tokens: int, focus: float) -> torch.Tensor:
    """(B, n_tokens) weights: 1 for template tokens, ``1 + focus * p`` for search tokens (``p``: teacher score
    normalised to a peak of 1); the search tokens are the last ``S * S``."""
    p = t_score.flatten(1).float()
    p = p / p.amax(dim=1, keepdim=True).clamp_min(1e-6)
    search = 1.0 + focus * p
    template = torch.ones(p.shape[0], n_tokens - p.shape[1], device=p.device)
    return torch.cat([template, search], dim=1)


def distill_losses(cfg: SelfDistillConfig, s_out, s_feats, t_out, t_feats, layers, proj) -> dict[str, torch.Tensor]:
    """Token terms at matching depth plus the head's soft targets; ``total`` is their weighted sum."""
    t_score = t_out[0].detach().float()
    tok = []
    for i, j in enumerate(layers):
        s, t = proj(i, s_feats["blocks"][i]).float(), t_feats["blocks"][j].detach().float()
        w = token_weights(t_score, t.shape[1], cfg.focus)
        err = (((s - t) ** 2).mean(-1) * w).sum() / w.sum()
        tok.append(err / (t ** 2).mean().clamp_min(1e-6))  # relative: layers of any scale weigh alike
    token = torch.stack(tok).mean()
    s_score = s_out[0].float().clamp(1e-4, 1 - 1e-4)
    score = F.binary_cross_entropy(s_score, t_score)
    wbox = t_score / t_score.sum(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    box = sum(((s.float() - t.detach().float()).abs().mean(1, keepdim=True) * wbox).sum(dim=(1, 2, 3)).mean()
              for s, t in zip(s_out[1:3], t_out[1:3]))
    total = cfg.token_weight * token + cfg.score_weight * score + cfg.box_weight * box
    return {"token": token, "score": score, "box": box, "total": total}


class SelfDistiller:
    """Owns teacher, student, projectors, optimizer and log of one run; ``run()`` trains to ``cfg.steps``."""

    def __init__(self, cfg: SelfDistillConfig, loader_factory) -> None:
        self.cfg, self.out = cfg, Path(cfg.out)
        torch.manual_seed(cfg.seed)
        torch.set_num_threads(max(1, cfg.threads))
        self.device = torch.device(cfg.device)
        self.teacher = load_checkpoint(cfg.teacher).eval().to(self.device)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        t_spec = self.teacher.spec
        spec = student_spec(t_spec, cfg.depth, cfg.width, cfg.heads)
        self.layers = matching_layers(cfg.depth, int(t_spec.arch["depth"]))
        self.student = build_model(spec)
        if cfg.init_blocks not in ("matching", "first"):
            raise InputError(f"init_blocks must be 'matching' or 'first', got {cfg.init_blocks!r}")
        if cfg.init_from_teacher:
            start = self.layers if cfg.init_blocks == "matching" else list(range(cfg.depth))
            init_from_teacher(self.student, self.teacher, start)
        self.proj = Projectors(cfg.depth, int(spec.arch["width"]), int(t_spec.arch["width"]))
        self.student.to(self.device)
        self.proj.to(self.device)
        self.optim = make_optimizer([*self.student.parameters(), *self.proj.parameters()], cfg.optim)
        self.scaler = torch.amp.GradScaler(enabled=self.device.type == "cuda")
        self.loader_factory, self.step = loader_factory, 0
        if cfg.resume:
            self._resume()
        self.log = TrainLog(self.out, self.step)

    def _resume(self) -> None:
        state = load_state(self.out)
        if state is None:
            return
        if state["spec"] != self.student.spec.to_json():
            raise InputError(f"{self.out} holds a run of another student; use another --out or --no-resume")
        self.student.load_state_dict(state["student"])
        self.proj.load_state_dict(state["proj"])
        self.optim.load_state_dict(state["optim"])
        set_rng_state(state["rng"])
        self.step = int(state["step"])

    def checkpoint(self) -> None:
        save_state(self.out, {"spec": self.student.spec.to_json(), "step": self.step, "rng": rng_state(),
                              "student": self.student.state_dict(), "proj": self.proj.state_dict(),
                              "optim": self.optim.state_dict()})
        save_checkpoint(self.student.eval(), self.out / "student.safetensors",
                        {"step": str(self.step), "teacher": str(self.cfg.teacher),
                         "layers": ",".join(map(str, self.layers))})
        self.student.train()
        self.log.flush()

    def train_step(self, batch: dict) -> dict[str, float]:
        cfg, spec = self.cfg, self.teacher.spec
        lr = lr_at(self.step, cfg.optim, cfg.steps)
        z = normalise(batch["template"].to(self.device, non_blocking=True), spec)
        x = normalise(batch["search"].to(self.device, non_blocking=True), spec)
        with torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            with torch.no_grad():
                t_out, t_feats = self.teacher.forward_train(z, x)
            s_out, s_feats = self.student.forward_train(z, x)
            terms = distill_losses(cfg, s_out, s_feats, t_out, t_feats, self.layers, self.proj)
        for group in self.optim.param_groups:
            group["lr"] = lr
        self.optim.zero_grad(set_to_none=True)
        self.scaler.scale(terms["total"]).backward()
        self.scaler.unscale_(self.optim)
        nn.utils.clip_grad_norm_([*self.student.parameters(), *self.proj.parameters()], cfg.optim.grad_clip)
        self.scaler.step(self.optim)
        self.scaler.update()
        return {"lr": lr, **{k: float(v.detach()) for k, v in terms.items()}}

    def run(self) -> dict[str, float]:
        from tqdm import tqdm

        cfg, values, start = self.cfg, {}, time.time()
        self.student.train()
        batches = self.loader_factory(self.step)
        bar = tqdm(total=cfg.steps, initial=self.step, desc="selfdistill", unit="step", dynamic_ncols=True)
        with _StopAtStepBoundary() as stop:
            while self.step < cfg.steps and not stop.requested:
                values = self.train_step(next(batches))
                self.step += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    self.log.add(self.step, values)
                    bar.set_postfix({k: f"{v:.4f}" for k, v in values.items() if k != "lr"})
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    self.checkpoint()
            if stop.requested:
                self.checkpoint()
        bar.close()
        self.log.close()
        if stop.requested:
            raise KeyboardInterrupt(f"stopped after step {self.step}; the checkpoint holds it")
        return {**values, "seconds": time.time() - start, "steps": self.step}


def run_cli(config: str | None, overrides: list[str]) -> dict[str, float]:
    """``edgetrack-train selfdistill``: load the config (YAML + overrides), write ``config.json``, train."""
    import json

    from ..data.fileio import atomic_write_text
    from .config import load_config, to_dict
    from .selfdistill_data import crop_loader_factory

    cfg = load_config(SelfDistillConfig, config, overrides)
    if not cfg.teacher:
        raise InputError("selfdistill needs --teacher (a vit-family checkpoint, e.g. from edgetrack import vittrack)")
    teacher_spec = load_checkpoint(cfg.teacher).spec
    trainer = SelfDistiller(cfg, crop_loader_factory(cfg, teacher_spec))
    atomic_write_text(trainer.out / "config.json", json.dumps(to_dict(cfg), indent=2))
    return trainer.run()
