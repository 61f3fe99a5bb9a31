"""Crop pairs for self-distillation: the training data of ``edgetrack-train`` (sequence folders, videos, generated
sequences, pool folders; the split's validation sequences refused), cut at the ``vit`` family's crop sizes.

No ground-truth targets are made: the teacher's outputs are the targets. The template crop of a vit spec is
``template_factor * sqrt(w h)`` wide; the pair sampler cuts by the context rule, which gives exactly that side
for a square target with ``context_amount = (template_factor - 1) / 2`` (and a slightly larger one for elongated
targets, seen by teacher and student alike).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import DataError
from ..spec import TrackerSpec
from .dataset import worker_init
from .loader import gather_sources, held_out_names, pool_sources
from .pairs import PairSampler, PairSpec


def pair_spec_for(spec: TrackerSpec, seed: int) -> PairSpec:
    """Crop sizes of ``spec`` (context amount from ``template_factor`` when the spec sets one)."""
    amount = (spec.template_factor - 1) / 2 if spec.template_factor > 0 else spec.context_amount
    return PairSpec(exemplar_size=spec.exemplar_size, instance_size=spec.instance_size,
                    context_amount=max(0.0, amount), seed=seed)


class CropStream(Dataset):
    """Index ``g`` = pair ``g % per_epoch`` of epoch ``g // per_epoch`` (so a resumed run continues exactly):
    ``template`` (3, E, E) and ``search`` (3, I, I) float32 BGR 0-255."""

    def __init__(self, sampler: PairSampler, per_epoch: int, total: int) -> None:
        self.sampler, self.per_epoch, self.total = sampler, per_epoch, total

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        epoch, i = divmod(int(index), self.per_epoch)
        pair = self.sampler.sample(i, epoch)
        return {key: torch.from_numpy(np.ascontiguousarray(pair[key].transpose(2, 0, 1))).float()
                for key in ("template", "search")}


def crop_loader_factory(cfg: Any, spec: TrackerSpec) -> Callable[[int], Iterator[dict]]:
    """``factory(start_step)`` -> endless batches of crops for ``cfg`` (a SelfDistillConfig)."""
    sources = gather_sources(cfg.data, cfg.data.split)
    sources += pool_sources(cfg.data, cfg.teacher, held_out_names(cfg.data.split))
    sampler = PairSampler(sources, pair_spec_for(spec, cfg.seed))
    bs = cfg.data.batch_size
    per_epoch = max(bs, cfg.data.samples_per_epoch // bs * bs)

    def batches(start_step: int) -> Iterator[dict]:
        total = (cfg.steps + 1) * bs
        stream = CropStream(sampler, per_epoch, total)
        # spawn, not fork: forking after torch/OpenCV started their thread pools can deadlock the workers
        extra = dict(multiprocessing_context="spawn", persistent_workers=True) if cfg.data.workers > 0 else {}
        loader = DataLoader(stream, batch_size=bs, sampler=range(start_step * bs, total), drop_last=True,
                            num_workers=cfg.data.workers, worker_init_fn=worker_init, **extra)
        yield from loader
        raise DataError("the batch stream ended before the last training step")

    return batches
