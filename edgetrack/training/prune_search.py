"""Choosing a pruned student's shape by *measured* latency: ``edgetrack-train prune``.

Every candidate of a small grid (hidden fraction x dropped residual blocks x tower width x tower depth) is cut
from the teacher on real crops; its exported search graph is timed on ONNX Runtime with one thread, and its
distance to the teacher before any training (relative error of the search features, mean error of the
foreground map) is measured on held-back crops. The chosen shape is the one closest to the teacher among those
at or under the latency target. Results go to ``OUT/prune_choice.json`` (written atomically; a killed search
starts over, it takes a minute or two), which ``--set prune.fast.hidden=...`` etc. take as printed.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..data.fileio import atomic_write_text
from ..errors import InputError
from .prune import PruneConfig, measure
from .prune_build import prune_teacher


@dataclass(frozen=True)
class PruneGrid:
    hidden: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.75)
    drop_blocks: tuple[tuple[int, ...], ...] = ((), (5,))
    tower: tuple[float, ...] = (0.5,)
    tower_depth: tuple[int, ...] = (2, 3, 0)
    importance: str = "energy"

    def candidates(self) -> list[PruneConfig]:
        return [PruneConfig(hidden=h, drop_blocks=d, tower=t, tower_depth=k, importance=self.importance)
                for h, d, t, k in itertools.product(self.hidden, self.drop_blocks, self.tower, self.tower_depth)]


@torch.no_grad()
def teacher_references(teacher, crops) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The teacher's search features and foreground probability on each ``(z, x)`` batch (computed once)."""
    refs = []
    for z, x in crops:
        (cls, _), feats = teacher.forward_train(z, x)
        refs.append((feats["xf"], cls.softmax(1)[:, 1]))
    return refs


@torch.no_grad()
def distance_to_teacher(student, crops, references) -> dict[str, float]:
    """Relative squared error of the search features and mean absolute error of the foreground probability,
    against :func:`teacher_references` of the same crops."""
    feat, fg = [], []
    for (z, x), (t_xf, t_fg) in zip(crops, references):
        (sc, _), sf = student.forward_train(z, x)
        feat.append(float((sf["xf"] - t_xf).pow(2).mean() / t_xf.pow(2).mean()))
        fg.append(float((t_fg - sc.softmax(1)[:, 1]).abs().mean()))
    return {"feature_error": sum(feat) / len(feat), "fg_error": sum(fg) / len(fg)}


def choose_shape(teacher, crops: list, target_ms: float, grid: PruneGrid, runs: int = 100,
                 progress: bool = True) -> dict:
    """Measure every candidate of ``grid``; return ``{"chosen": ..., "candidates": [...]}``."""
    from tqdm import tqdm

    from .nas import onnx_latency_ms

    if len(crops) < 2:
        raise InputError("choosing a pruned shape needs at least two batches of crops")
    half = len(crops) // 2
    stats = measure(teacher, crops[:half])
    held, references = crops[half:], teacher_references(teacher, crops[half:])
    rows = []
    for cfg in tqdm(grid.candidates(), desc="prune candidates", disable=not progress):
        try:
            student = prune_teacher(teacher, cfg, stats)
        except Exception as exc:  # an impossible combination (e.g. a non-residual block dropped)
            rows.append({"config": asdict(cfg), "error": str(exc)})
            continue
        rows.append({"config": asdict(cfg), "latency_ms": onnx_latency_ms(student.spec, runs=runs),
                     **distance_to_teacher(student, held, references)})
    ok = [r for r in rows if "latency_ms" in r and r["latency_ms"] <= target_ms]
    chosen = min(ok, key=lambda r: r["feature_error"]) if ok else None
    return {"target_ms": target_ms, "teacher_ms": onnx_latency_ms(teacher.spec, runs=runs), "chosen": chosen,
            "candidates": rows}


def overrides_for(chosen: dict, student: str = "fast") -> list[str]:
    """``--set`` arguments that give a training run the chosen shape."""
    c = chosen["config"]
    drop = ",".join(str(i) for i in c["drop_blocks"])
    return [f"prune.{student}.hidden={c['hidden']}", f"prune.{student}.drop_blocks={drop}",
            f"prune.{student}.tower={c['tower']}", f"prune.{student}.tower_depth={c['tower_depth']}",
            f"prune.{student}.importance={c['importance']}"]


def run_choice(teacher, crops: list, target_ms: float, out: str | Path, grid: PruneGrid | None = None) -> dict:
    result = choose_shape(teacher, crops, target_ms, grid or PruneGrid())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if result["chosen"] is not None:
        result["overrides"] = overrides_for(result["chosen"])
    atomic_write_text(out / "prune_choice.json", json.dumps(result, indent=1))
    return result
