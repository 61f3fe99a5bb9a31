"""The training loop: a frozen teacher and several students trained at once, resumable, logged.

Each step: one batch of template/search pairs; the teacher's outputs and features (no grad); every student's
outputs; per-student losses from :mod:`edgetrack.training.objective`; one backward over the sum (cross-student
terms use detached peers) and one optimizer step per student. Every ``checkpoint_every`` steps the whole state
(students, optimizers, step, RNG) is written atomically, plus one edgetrack checkpoint per student.
"""
from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import DataError, InputError
from ..models.base import SiameseNet
from ..models.io import load_checkpoint, save_checkpoint
from ..models.registry import build_model
from . import distributed as ddp
from .checkpointing import load_state, rng_state, save_state, set_rng_state
from .ema import make_averages, save_averages
from .logs import TrainLog
from .losses_dlf import trunk_taps
from .objective import ObjectiveConfig, log_values, step_losses
from .optim import OptimConfig, lr_at, make_optimizer
from .prune import PruneConfig, feature_taps, stage_end_taps
from .students import init_from_teacher, read_student_spec, student_spec, train_mode


@dataclass(frozen=True)
class DataConfig:
    data: tuple[str, ...] = ()
    videos: tuple[str, ...] = ()
    synthetic: int = 0
    split: str = "dev"
    exclude: tuple[str, ...] = ()  # more sequence names to leave out (e.g. the architecture search's reward set)
    batch_size: int = 16
    workers: int = 1
    samples_per_epoch: int = 4096
    pool: tuple[str, ...] = ()  # video folders with MANIFEST.tsv: every `train` row is used, `val` rows never
    pseudo_tracks: int = 0      # teacher tracks per unlabeled pool video (0: random-box pairs only)
    pseudo_min_score: float = 0.6  # a pseudo-track ends when the teacher's score stays below this
    cache: str = "runs/cache"   # teacher pseudo-tracks, paid once
    augment: dict = field(default_factory=dict)  # training.pairs.PairSpec fields that differ from NanoTrack's,
                                                 # e.g. {search_flip: 0.5, template_flip: 0.5, gray: 0.1}
    aerial_weight: float = 1.0  # how much more often a source filmed from the air is drawn (1: all equally)


@dataclass(frozen=True)
class PruneSet:
    """How the pruned students are cut from the teacher (students named ``fast`` and ``accurate``)."""

    fast: PruneConfig = field(default_factory=lambda: PruneConfig(hidden=0.4, drop_blocks=(5,), tower=0.5,
                                                                  tower_depth=2, name="fast"))
    accurate: PruneConfig = field(default_factory=lambda: PruneConfig(hidden=0.6, tower=0.6, tower_depth=4,
                                                                      name="accurate"))
    calib_batches: int = 8


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """What every training command's run shares: where it runs, how long, how often it logs and checkpoints."""

    device: str = "cpu"  # "cuda" / "cuda:N": mixed precision there
    steps: int = 1000
    checkpoint_every: int = 100
    log_every: int = 10
    seed: int = 0
    threads: int = 2
    resume: bool = True


@dataclass(frozen=True)
class TrainConfig(RunSettings):
    out: str = "runs/train"
    teacher: str = ""
    students: tuple[str, ...] = ("intelligent", "dull")
    student_width: float = 0.5
    dull_arch: str = ""
    init_from_teacher: bool = True
    init_run: str = ""  # start the students from this run's checkpoints (a previous stage)
    prune: PruneSet = field(default_factory=PruneSet)
    cuts: dict = field(default_factory=dict)  # student name -> PruneConfig keys: more students cut from the teacher
    student_spec: str = ""  # a search's student_spec.json: that student (named in it) is cut from the teacher
    fold_se: tuple[str, ...] = ()  # students whose squeeze-excite units become their mean gates (training.fold_se)
    keep_every: int = 0  # also keep every student's weights each N steps (student_<name>_step<N>.safetensors)
    ema_decay: float = 0.0  # > 0: also keep each student's weight average (training.ema), e.g. 0.998
    freeze_bn: bool = False  # students' batch norms keep the statistics they started with (students.train_mode)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)


class _Step(nn.Module):
    """Forward used for training (and what DDP wraps): head outputs plus features."""

    def __init__(self, net: SiameseNet, taps: list[int] | None = None) -> None:
        super().__init__()
        self.net, self.taps = net, list(taps or [])

    def forward(self, z: torch.Tensor, x: torch.Tensor):
        if not self.taps:
            return self.net.forward_train(z, x)
        return forward_taps(self.net, z, x, self.taps)


def forward_taps(net: SiameseNet, z: torch.Tensor, x: torch.Tensor, indices: list[int]):
    """Head outputs and features plus the trunk outputs at ``indices`` (``z_taps``, ``x_taps``)."""
    zf, z_taps = trunk_taps(net.backbone, z, indices)
    xf, x_taps = trunk_taps(net.backbone, x, indices)
    return net.ban_head(zf, xf), {"zf": zf, "xf": xf, "z_taps": z_taps, "x_taps": x_taps}


def student_cuts(cfg: TrainConfig) -> dict[str, PruneConfig]:
    """Students cut from the teacher, by name: ``fast``/``accurate`` (``prune``), every ``cuts`` entry, and the
    student of ``student_spec``."""
    from .config import from_dict

    cuts = {"fast": cfg.prune.fast, "accurate": cfg.prune.accurate}
    for name, keys in cfg.cuts.items():
        cuts[name] = from_dict(PruneConfig, {**dict(keys), "name": name}, prefix=f"cuts.{name}.")
    if cfg.student_spec:
        name, cut = read_student_spec(cfg.student_spec)
        cuts[name] = cut
    return cuts


def student_names(cfg: TrainConfig) -> list[str]:
    """``students``, plus the student of ``student_spec`` when it is not among them."""
    names = list(cfg.students)
    if cfg.student_spec:
        name = read_student_spec(cfg.student_spec)[0]
        names += [] if name in names else [name]
    return names


def build_students(cfg: TrainConfig, teacher: SiameseNet, calib=None) -> dict[str, SiameseNet]:
    """Every student of the run: from ``init_run`` checkpoints, cut from the teacher (:func:`student_cuts`)
    or built by kind and initialised from teacher slices. ``calib()`` gives the real crops that the pruning
    statistics and the squeeze-excite mean gates are measured on (read once)."""
    students, stats, cuts = {}, None, student_cuts(cfg)
    if calib is not None:
        calib = functools.cache(calib)
    for name in student_names(cfg):
        if cfg.init_run:
            students[name] = load_checkpoint(Path(cfg.init_run) / f"student_{name}.safetensors")
            continue
        if name in cuts:
            from .prune import measure
            from .prune_build import prune_teacher

            stats = stats or measure(teacher, calib())
            students[name] = prune_teacher(teacher, cuts[name], stats)
            continue
        arch = None
        if name == "dull" and cfg.dull_arch:
            loaded = json.loads(Path(cfg.dull_arch).read_text())
            # a search's best.json: the best candidate actually trained and scored; else an arch file or dict
            arch = (loaded.get("best") or {}).get("arch") or loaded.get("arch") or loaded
        spec = student_spec(teacher.spec, name if name in ("intelligent", "dull") else "custom", arch,
                            cfg.student_width)
        net = build_model(spec)
        if cfg.init_from_teacher:
            init_from_teacher(net, teacher)
        students[name] = net
    for name in cfg.fold_se:
        from .fold_se import fold_se, mean_gates

        if name not in students:
            raise InputError(f"fold_se names {name!r}, which is not a student of this run ({sorted(students)})")
        students[name] = fold_se(students[name], mean_gates(students[name], calib()))
    return students


def normalise(images: torch.Tensor, spec) -> torch.Tensor:
    """Float 0-255 BGR batches -> the network's input convention (channel order, mean, std) from the spec."""
    if spec.channel_order == "RGB":
        images = images.flip(1)
    mean = torch.tensor(spec.mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def crop_batches(loader_factory, spec, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``count`` batches of a run's stream as normalised ``(z, x)`` crops (fewer when the run is
    shorter). Read in this process: worker processes stopped after a few batches aborted mid-prefetch."""
    batches, crops = loader_factory(0, workers=0), []
    try:
        for _ in range(count):
            b = next(batches)
            crops.append((normalise(b["template"], spec), normalise(b["search"], spec)))
    except DataError:  # a run shorter than that: what there is
        pass
    finally:
        batches.close()
    return crops


class Trainer:
    """Owns the models, optimizers and logs of one run; ``run()`` trains to ``cfg.steps``."""

    def __init__(self, cfg: TrainConfig, loader_factory, dist: ddp.DistInfo | None = None) -> None:
        if cfg.keep_every < 0:
            raise InputError(f"keep_every must be 0 (off) or a number of steps, got {cfg.keep_every}")
        self.cfg = cfg
        self.dist = dist or ddp.DistInfo()
        self.out = Path(cfg.out)
        torch.manual_seed(cfg.seed + self.dist.rank)
        torch.set_num_threads(max(1, cfg.threads))
        self.device = torch.device(cfg.device)
        self.teacher = load_checkpoint(cfg.teacher).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.loader_factory = loader_factory
        self.students = build_students(cfg, self.teacher, self._calibration)
        self.names = list(self.students)
        cuts = student_cuts(cfg)
        self.taps = {n: feature_taps(self.teacher.spec.arch, cuts[n]) if n in cuts else [] for n in self.names}
        ends = stage_end_taps(self.teacher.spec.arch)
        self.str_taps = {n: [m for m, (_, t) in enumerate(pairs) if t in ends] for n, pairs in self.taps.items()}
        self.ks_gate = {n: {"open": 0, "steps": 0, "first_open_step": None} for n in self.names}
        self.teacher.to(self.device)
        for m in self.students.values():
            m.to(self.device)
        self.scaler = torch.amp.GradScaler(enabled=self.device.type == "cuda")
        self.steps = {n: ddp.wrap(_Step(m, [s for s, _ in self.taps[n]]), self.dist)
                      for n, m in self.students.items()}
        self.teacher_taps = sorted({t for pairs in self.taps.values() for _, t in pairs})
        self.tap_where = {n: [self.teacher_taps.index(t) for _, t in pairs] for n, pairs in self.taps.items()}
        self.optims = {n: make_optimizer(m.parameters(), cfg.optim) for n, m in self.students.items()}
        self.averages = make_averages(self.students, cfg.ema_decay)
        self.step = 0
        if cfg.resume:
            self._resume()
        self.log = TrainLog(self.out, self.step) if self.dist.is_main else None

    def _resume(self) -> None:
        state = load_state(self.out)
        if state is None:
            return
        if state["names"] != self.names:
            raise ValueError(f"{self.out} holds a run of students {state['names']}, not {self.names}")
        for n in self.names:
            self.students[n].load_state_dict(state["students"][n])
            self.optims[n].load_state_dict(state["optims"][n])
        set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.ks_gate.update(state.get("ks_gate", {}))
        for n, avg in self.averages.items():  # a run that had none starts its averages from the weights now
            if n in state.get("averages", {}):
                avg.load_state_dict(state["averages"][n])

    def checkpoint(self, keep: bool = False) -> None:
        """The resumable state and every student's weights; with ``keep``, a copy of the weights named by step."""
        if not self.dist.is_main:
            return
        save_state(self.out, {"names": self.names, "step": self.step, "rng": rng_state(), "ks_gate": self.ks_gate,
                              "students": {n: m.state_dict() for n, m in self.students.items()},
                              "optims": {n: o.state_dict() for n, o in self.optims.items()},
                              "averages": {n: a.state_dict() for n, a in self.averages.items()}})
        save_averages(self.out, self.averages, self.students, self.step, keep)
        for n, m in self.students.items():
            save_checkpoint(m.eval(), self.out / f"student_{n}.safetensors", {"step": str(self.step)})
            if keep:
                save_checkpoint(m, self.out / f"student_{n}_step{self.step}.safetensors", {"step": str(self.step)})
            train_mode(m, self.cfg.freeze_bn)
        if any(g["steps"] for g in self.ks_gate.values()):
            from ..data.fileio import atomic_write_text

            atomic_write_text(self.out / "ks_gate.json", json.dumps(self.ks_gate, indent=1))
        self.log.flush()

    def _calibration(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Real crops for the pruning statistics: the first batches of the training stream."""
        return crop_batches(self.loader_factory, self.teacher.spec, max(1, self.cfg.prune.calib_batches))

    def _forward(self, z: torch.Tensor, x: torch.Tensor):
        with torch.no_grad():
            if self.teacher_taps:
                t_out, t_feats = forward_taps(self.teacher, z, x, self.teacher_taps)
            else:
                t_out, t_feats = self.teacher.forward_train(z, x)
        outs, feats = zip(*(self.steps[n](z, x) for n in self.names))
        for n, f in zip(self.names, feats):
            if self.taps[n]:
                where = self.tap_where[n]
                f["teacher_taps"] = [t_feats["z_taps"][k] for k in where] + [t_feats["x_taps"][k] for k in where]
                f["str_taps"] = self.str_taps[n]
        return t_out, t_feats, list(outs), list(feats)

    def train_step(self, batch: dict) -> dict[str, float]:
        cfg, spec = self.cfg, self.teacher.spec
        lr = lr_at(self.step, cfg.optim, cfg.steps)
        batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        z, x = normalise(batch["template"], spec), normalise(batch["search"], spec)
        with torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            t_out, t_feats, outs, feats = self._forward(z, x)
            epoch = self.step * cfg.data.batch_size // max(1, cfg.data.samples_per_epoch)
            terms = step_losses(cfg.objective, spec.family, epoch, self.step < cfg.optim.warmup_steps, batch,
                                t_out, t_feats, outs, feats, scale=float(spec.exemplar_size))
        for opt in self.optims.values():
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
        self.scaler.scale(torch.stack([t["total"].float() for t in terms]).sum()).backward()
        for n, opt in self.optims.items():
            self.scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(self.students[n].parameters(), cfg.optim.grad_clip)
            self.scaler.step(opt)
        self.scaler.update()
        values = {"lr": lr, **log_values(self.names, terms)}
        self._count_gate(values)
        return values

    def _count_gate(self, values: dict[str, float]) -> None:
        """Knowledge sharing's gate: how often, and from which step, each student's gate opened."""
        for n in self.names:
            if f"{n}/ks_open" not in values:
                continue
            g = self.ks_gate[n]
            g["steps"] += 1
            if values[f"{n}/ks_open"] > 0:
                g["open"] += 1
                g["first_open_step"] = self.step + 1 if g["first_open_step"] is None else g["first_open_step"]
            values[f"{n}/ks_open_rate"] = g["open"] / g["steps"]

    def run(self) -> dict[str, float]:
        from tqdm import tqdm

        cfg = self.cfg
        for m in self.students.values():
            train_mode(m, cfg.freeze_bn)
        batches = self.loader_factory(self.step)
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", disable=not self.dist.is_main,
                   unit="step", dynamic_ncols=True)
        values: dict[str, float] = {}
        start = time.time()
        with _StopAtStepBoundary() as stop:
            values = self._loop(batches, bar, stop)
        bar.close()
        if self.log is not None:
            self.log.close()
        if stop.requested:
            raise KeyboardInterrupt(f"stopped after step {self.step}; the checkpoint holds it")
        return {**values, "seconds": time.time() - start, "steps": self.step}

    def _loop(self, batches, bar, stop) -> dict[str, float]:
        cfg, values = self.cfg, {}
        while self.step < cfg.steps:
            if stop.requested:
                self.checkpoint()
                break
            batch = next(batches)
            values = self.train_step(batch)
            self.step += 1
            for n, avg in self.averages.items():
                avg.update(self.students[n], self.step)
            bar.update(1)
            if self.dist.is_main and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                self.log.add(self.step, values)
                bar.set_postfix({k.split("/")[0][:4] + ":" + k.split("/")[-1]: f"{v:.3f}"
                                 for k, v in values.items() if k.endswith("/total")})
            keep = cfg.keep_every > 0 and self.step % cfg.keep_every == 0
            if keep or self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                self.checkpoint(keep)
        return values


class _StopAtStepBoundary:
    """Ctrl+C / SIGTERM during training: finish the current step, write a checkpoint, then stop (a second
    Ctrl+C stops at once). Outside the main thread, signals are left alone."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict = {}

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopAtStepBoundary:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
