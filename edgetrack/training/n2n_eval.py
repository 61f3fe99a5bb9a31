"""Scoring one candidate of the dull student's search (TSsKD Eqs. 6 and 7).

A candidate (per-layer shrink ratios) is cut from the teacher with its weights (the pruning code: ratios ->
kept channels by measured importance, mean compensation), distilled for ``proxy_steps`` steps (TSKD objective)
on a *fixed* subset of training batches, then scored:

* ``acc`` (Eq. 7): the summed IoU of its top-``top_n`` proposals with the ground truth over ``M`` fixed
  validation pairs drawn from training-split data (another seed of the same stream, positive pairs with a known
  box): cheap and far less noisy than tracking AUC on a few sequences;
* ``C = 1 - S_s / S_t`` with ``S`` the parameter count (``reward="size"``, Eq. 6), or the median one-thread
  ONNX Runtime latency of the exported search graph (``reward="latency"``: what edge users pay);
* ``R = C (2 - C) acc_s / acc_t``.

The fixed batches, the validation pairs, the channel statistics and the teacher's measures are cached under the
search folder; every candidate's result is cached in ``candidates/<key>/result.json`` (atomic writes).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.fileio import atomic_write_text
from ..errors import InputError
from .config import from_dict
from .prune import PruneConfig

REWARDS = ("size", "latency")


@dataclass(frozen=True)
class EvalConfig:
    proxy_steps: int = 60     # distillation steps per candidate
    train_batches: int = 12   # the fixed subset (cycled)
    val_pairs: int = 64       # M
    top_n: int = 5            # proposals per pair in Eq. 7
    reward: str = "size"
    latency_runs: int = 40
    lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.reward not in REWARDS:
            raise InputError(f"reward must be one of {REWARDS}, got {self.reward!r}")


def cut_key(cut: dict) -> str:
    return hashlib.sha1(json.dumps(cut, sort_keys=True).encode()).hexdigest()[:12]


def reward(compression: float, acc_ratio: float) -> float:
    """Eq. 6: ``C (2 - C) * acc_s / acc_t`` (``C`` clipped to [0, 1]: a candidate larger than the teacher earns 0)."""
    c = min(max(compression, 0.0), 1.0)
    return c * (2.0 - c) * acc_ratio


@torch.no_grad()
def proposal_iou_sum(cls: torch.Tensor, reg: torch.Tensor, boxes: torch.Tensor, points: np.ndarray,
                     top_n: int) -> float:
    """Eq. 7 over a batch: sum over pairs of the IoU of the ``top_n`` highest-scoring anchor-free proposals
    (``cls (B, 2, S, S)``, ``reg (B, 4, S, S)`` ltrb crop pixels) with ``boxes (B, 4)`` x1, y1, x2, y2."""
    b = cls.shape[0]
    score = torch.softmax(cls.float(), dim=1)[:, 1].reshape(b, -1)
    px = torch.as_tensor(points[0].reshape(-1), dtype=torch.float32)
    py = torch.as_tensor(points[1].reshape(-1), dtype=torch.float32)
    d = reg.float().reshape(b, 4, -1)
    props = torch.stack([px - d[:, 0], py - d[:, 1], px + d[:, 2], py + d[:, 3]], dim=2)  # (B, N, 4)
    idx = score.topk(min(top_n, score.shape[1]), dim=1).indices
    top = torch.gather(props, 1, idx[..., None].expand(-1, -1, 4))
    gt = boxes.float()[:, None, :]
    iw = (torch.minimum(top[..., 2], gt[..., 2]) - torch.maximum(top[..., 0], gt[..., 0])).clamp(min=0)
    ih = (torch.minimum(top[..., 3], gt[..., 3]) - torch.maximum(top[..., 1], gt[..., 1])).clamp(min=0)
    inter = iw * ih
    area = lambda r: (r[..., 2] - r[..., 0]).clamp(min=0) * (r[..., 3] - r[..., 1]).clamp(min=0)  # noqa: E731
    return float((inter / (area(top) + area(gt) - inter).clamp(min=1e-6)).sum())


def _save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class CandidateEvaluator:
    """``evaluator(cut) -> {"reward", "acc", "acc_ratio", "compression", "params", "latency_ms", ...}``."""

    def __init__(self, base, out: str | Path, cfg: EvalConfig = EvalConfig()) -> None:
        from ..models.io import load_checkpoint

        if not base.teacher:
            raise InputError("the search needs a teacher checkpoint (--teacher)")
        self.base, self.out, self.cfg = base, Path(out), cfg
        self.out.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(max(1, base.threads))
        self.teacher = load_checkpoint(base.teacher).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.teacher_arch = self.teacher.spec.arch
        self.train, self.val = self._fixed_data()
        self.stats = self._stats()
        self.ref = self._teacher_measures()

    # ------------------------------------------------------------------------------------------ cached inputs
    def _fixed_data(self) -> tuple[list[dict], list[dict]]:
        """The fixed training batches and validation pairs (cached in ``fixed_data.pt``)."""
        path = self.out / "fixed_data.pt"
        if path.exists():
            data = torch.load(path, weights_only=False)
            return data["train"], data["val"]
        from . import distributed as ddp
        from .loader import make_loader_factory

        bs = self.base.data.batch_size
        train_cfg = dataclasses.replace(self.base, steps=self.cfg.train_batches)
        stream = make_loader_factory(train_cfg, ddp.DistInfo())(0)
        train = [_tensors(next(stream)) for _ in range(self.cfg.train_batches)]
        val_cfg = dataclasses.replace(self.base, seed=self.base.seed + 1, steps=64 * self.cfg.val_pairs // bs + 1)
        val_stream, val = make_loader_factory(val_cfg, ddp.DistInfo())(0), []
        while sum(len(v["bbox"]) for v in val) < self.cfg.val_pairs:
            b = _tensors(next(val_stream))
            keep = b["has_gt"].bool() & b["positive"].bool() & torch.isfinite(b["bbox"]).all(dim=1)
            if keep.any():
                val.append({k: v[keep] for k, v in b.items()})
        _save({"train": train, "val": val}, path)
        return train, val

    def _stats(self):
        path = self.out / "prune_stats.pt"
        if path.exists():
            return torch.load(path, weights_only=False)
        from .prune import measure
        from .trainer import normalise

        stats = measure(self.teacher, [(normalise(b["template"], self.teacher.spec),
                                        normalise(b["search"], self.teacher.spec)) for b in self.train[:4]])
        _save(stats, path)
        return stats

    def _teacher_measures(self) -> dict:
        path = self.out / "teacher.json"
        ref = json.loads(path.read_text()) if path.exists() else {}
        if "acc" not in ref:
            ref = {"acc": self.accuracy(self.teacher), "params": _params(self.teacher)}
        if self.cfg.reward == "latency" and "latency_ms" not in ref:
            from .nas import onnx_latency_ms

            ref["latency_ms"] = onnx_latency_ms(self.teacher.spec, runs=self.cfg.latency_runs)
        atomic_write_text(path, json.dumps(ref, indent=1))
        return ref

    # ---------------------------------------------------------------------------------------------- scoring
    @torch.no_grad()
    def accuracy(self, net) -> float:
        """Eq. 7 on the fixed validation pairs."""
        from .targets import score_points
        from .trainer import normalise

        net.eval()
        total = 0.0
        for b in self.val:
            (cls, reg), _ = net.forward_train(normalise(b["template"], net.spec), normalise(b["search"], net.spec))
            size = b["search"].shape[-1]
            points = score_points(cls.shape[-1], net.spec.stride, size, net.spec.origin_for(size))
            total += proposal_iou_sum(cls, reg, b["bbox"], points, self.cfg.top_n)
        return total

    def distil(self, student) -> None:
        """``proxy_steps`` TSKD steps on the fixed batches (cycled), from the teacher's weights."""
        from .objective import step_losses
        from .trainer import normalise

        objective = dataclasses.replace(self.base.objective, mode="tskd", feat_weight=0.0, pair_weight=0.0)
        torch.manual_seed(self.base.seed)
        opt = torch.optim.AdamW(student.parameters(), lr=self.cfg.lr, weight_decay=0.0)
        student.train()
        spec = self.teacher.spec
        for step in range(self.cfg.proxy_steps):
            b = self.train[step % len(self.train)]
            z, x = normalise(b["template"], spec), normalise(b["search"], spec)
            t_out, t_feats = self._teacher_out(step % len(self.train), z, x)
            out, feats = student.forward_train(z, x)
            terms = step_losses(objective, spec.family, 0, False, b, t_out, t_feats, [out], [feats],
                                scale=float(spec.exemplar_size))
            opt.zero_grad(set_to_none=True)
            terms[0]["total"].backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), self.base.optim.grad_clip)
            opt.step()
        student.eval()

    @torch.no_grad()
    def _teacher_out(self, i: int, z: torch.Tensor, x: torch.Tensor):
        """The teacher's outputs on fixed batch ``i`` (computed once per search process)."""
        cache = self.__dict__.setdefault("_teacher_cache", {})
        if i not in cache:
            cache[i] = self.teacher.forward_train(z, x)
        return cache[i]

    def __call__(self, cut: dict) -> dict:
        folder = self.out / "candidates" / cut_key({"cut": cut, "eval": dataclasses.asdict(self.cfg),
                                                    "seed": self.base.seed})
        result_path = folder / "result.json"
        if result_path.exists():
            return json.loads(result_path.read_text())
        from .prune_build import prune_teacher

        student = prune_teacher(self.teacher, from_dict(PruneConfig, {**cut, "name": "dull"}), self.stats)
        self.distil(student)
        rec = {"acc": self.accuracy(student), "params": _params(student)}
        rec["acc_ratio"] = rec["acc"] / max(self.ref["acc"], 1e-9)
        if self.cfg.reward == "latency":
            from .nas import onnx_latency_ms

            rec["latency_ms"] = onnx_latency_ms(student.spec, runs=self.cfg.latency_runs)
            rec["compression"] = 1.0 - rec["latency_ms"] / self.ref["latency_ms"]
        else:
            rec["compression"] = 1.0 - rec["params"] / self.ref["params"]
        rec["size_compression"] = 1.0 - rec["params"] / self.ref["params"]
        rec["reward"] = reward(rec["compression"], rec["acc_ratio"])
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "cut.json", json.dumps(cut, indent=1))
        atomic_write_text(result_path, json.dumps(rec, indent=1))
        return rec


def _params(net) -> int:
    return int(sum(p.numel() for p in net.parameters()))


def _tensors(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if torch.is_tensor(v)}
