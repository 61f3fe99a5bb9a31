"""``torch.utils.data.Dataset`` of Siamese training pairs with the targets of a tracker family.

Typical use::

    ds = PairDataset(sources, PairSpec(seed=1), spec, length=64_000)
    loader = DataLoader(ds, batch_size=32, num_workers=2, collate_fn=collate)
    for epoch in range(n_epochs):
        ds.set_epoch(epoch)          # before iterating; keep persistent_workers=False (the default)
        for batch in loader: ...

Item ``index`` of ``epoch`` is a pure function of ``(PairSpec.seed, epoch, index)``: the same with any number
of workers and in any order. Images are float32 CHW tensors with values 0..255 in the frames' channel order
(BGR); a spec with ``channel_order="RGB"`` (SiamFC) needs the channels swapped by the trainer.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from edgetrack.errors import DataError
from edgetrack.spec import TrackerSpec

from .pairs import PairSampler, PairSpec
from .targets import TargetConfig, TargetMaker

META_KEYS = ("source", "search_source")
# The process that imported this module: a DataLoader worker with another pid was forked from it.
_IMPORT_PID = os.getpid()


def _image(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float()


class PairDataset(Dataset):
    """``length`` pairs per epoch drawn from ``sources`` (Sequences and/or video paths, see
    :class:`PairSampler`), with the ``spec.family`` targets for a ``pair_spec.instance_size`` search crop.

    Item keys: ``template`` (3, E, E) and ``search`` (3, I, I) float32; ``bbox`` (4,) float32 (NaN when
    unknown); ``positive``, ``has_gt`` bool; ``frames`` (2,) int64; ``source``, ``search_source`` str; plus
    the family's targets (``TargetMaker.shapes``).
    """

    def __init__(self, sources: Iterable[Any], pair_spec: PairSpec | None, spec: TrackerSpec, length: int,
                 epoch: int = 0, *, target_config: TargetConfig | None = None,
                 weights: Iterable[float] | None = None, cache_mb: float = 256.0) -> None:
        if int(length) < 1:
            raise DataError(f"PairDataset length must be >= 1, got {length}")
        self.pair_spec = pair_spec or PairSpec()
        self.sampler = PairSampler(sources, self.pair_spec, weights=weights, cache_mb=cache_mb)
        self.targets = TargetMaker(spec, self.pair_spec.instance_size, target_config)
        self.spec = spec
        self.length = int(length)
        self.epoch = 0
        self.set_epoch(epoch)

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose pairs are served (workers started afterwards see it)."""
        if int(epoch) < 0:
            raise DataError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"pair {index} out of range ({self.length} per epoch)")
        pair = self.sampler.sample(index, self.epoch)
        rng = np.random.default_rng([self.pair_spec.seed, self.epoch, int(index), 1])
        targets = self.targets(pair["bbox"], pair["positive"], pair["has_gt"], rng)
        item: dict[str, Any] = {
            "template": _image(pair["template"]),
            "search": _image(pair["search"]),
            "bbox": torch.from_numpy(pair["bbox"]),
            "positive": torch.tensor(pair["positive"]),
            "has_gt": torch.tensor(pair["has_gt"]),
            "frames": torch.tensor(pair["frames"], dtype=torch.int64),
            "source": pair["source"],
            "search_source": pair["search_source"],
        }
        item.update({k: torch.from_numpy(v) for k, v in targets.items()})
        return item


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors along a new batch dimension; string fields become lists."""
    if not items:
        raise DataError("cannot collate an empty batch")
    out: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        out[key] = values if key in META_KEYS else torch.stack(values)
    return out


def worker_init(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=...)``: one torch and one OpenCV thread per worker (the workers are the
    parallelism). OpenCV's thread count is left alone in a forked worker: ``cv2.setNumThreads`` there
    deadlocks once the parent has used OpenCV (OpenCV 5.0, pthreads backend); spawned workers set it.

    Workers ignore SIGINT and SIGTERM: Ctrl+C, ``timeout`` and service managers signal the whole process group,
    and a worker killed by it made the main process fail on the next batch instead of finishing its step and
    writing the checkpoint; the main process shuts its workers down itself (and they exit when it dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)
    if os.getpid() == _IMPORT_PID:
        cv2.setNumThreads(1)
