"""Batches for the trainer: sources from the config (sequence folders, unlabeled videos, generated sequences),
validation sequences of the split refused, an endless iterator that resumes at the right epoch and batch."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from torch.utils.data import DataLoader, Dataset

from ..data import open_dataset
from ..data.synthetic import synthetic_sequence
from ..errors import DataError, InputError
from ..spec import TrackerSpec
from .dataset import PairDataset, collate, worker_init
from .pairs import PairSpec
from .split import assert_disjoint, load_split


def held_out_names(split: str) -> set[str]:
    """Names a run must never train on: the split's validation sequences and unlabeled validation videos."""
    if not split:
        return set()
    doc = load_split(split)
    return set(doc["val"]) | set(doc.get("unlabeled_val", []))


def gather_sources(cfg, split: str = "") -> list:
    """Sequences from ``cfg.data`` folders (minus the split's validation ones), videos, synthetic sequences.
    Empty is an error unless the config also names pool folders (``cfg.pool``)."""
    held_out = held_out_names(split)
    sources: list = []
    excluded = held_out | set(getattr(cfg, "exclude", ()))
    for folder in cfg.data:
        ds = open_dataset(folder)
        kept = [ds[name] for name in ds.names if name not in excluded]
        assert_disjoint([s.name for s in kept], held_out)
        sources += kept
    for video in cfg.videos:
        if Path(video).name in held_out:
            raise DataError(f"{video} is a validation video of split '{split}'; it cannot be trained on")
        sources.append(str(video))
    sources += [synthetic_sequence(1000 + i, n_frames=80) for i in range(cfg.synthetic)]
    if not sources and not getattr(cfg, "pool", ()):
        raise DataError("no training data: give --data, --videos or --synthetic")
    return sources


class _Continuous(Dataset):
    """Index ``g`` of an endless stream = pair ``g % per_epoch`` of epoch ``g // per_epoch``, so one loader (with
    persistent workers) serves every epoch and a resumed run starts at the exact next pair."""

    def __init__(self, pairs: PairDataset, total: int) -> None:
        self.pairs, self.total = pairs, total

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index: int) -> dict:
        epoch, i = divmod(int(index), len(self.pairs))
        if epoch != self.pairs.epoch:
            self.pairs.set_epoch(epoch)
        return self.pairs[i]


def pool_sources(cfg, teacher: str, held_out: set[str]) -> list:
    """Every ``train`` row of each pool folder (``MANIFEST.tsv``): labelled videos as sequences, the others as
    unlabeled videos (random-box pairs) plus, with ``pseudo_tracks``, the teacher's tracks on them."""
    from ..data.videos import read_videos
    from .pairs import VideoSource
    from .pseudo import PseudoConfig, pseudo_tracks

    sources, videos = [], []
    for folder in cfg.pool:
        for seq in read_videos(folder, split="train"):
            if seq.name in held_out or Path(seq.path).name in held_out:
                raise DataError(f"{seq.path} is a validation video of the split; it cannot be trained on")
            if getattr(seq, "unscored_reason", None):
                videos.append(VideoSource(seq.path))
            else:
                sources.append(seq)
    sources += videos
    if cfg.pseudo_tracks and videos:
        sources += pseudo_tracks(teacher, videos, cfg.cache, PseudoConfig(tracks=cfg.pseudo_tracks,
                                                                             min_score=cfg.pseudo_min_score))
    return sources


def aerial_pool_names(cfg) -> set[str]:
    """File stems of the pool's videos that its MANIFEST.tsv marks aerial (``aerial=yes``)."""
    from ..data.videos import read_manifest

    names = set()
    for folder in cfg.pool:
        manifest = Path(folder) / "MANIFEST.tsv"
        rows = read_manifest(manifest) if manifest.is_file() else []
        names |= {Path(r.get("file") or r.get("name", "")).stem for r in rows if r.get("aerial", "") == "yes"}
    return names


def is_aerial(source, aerial_videos: set[str]) -> bool:
    """A source filmed from the air: its manifest says so, its name is one of ``aerial_videos`` (or a pseudo-track
    ``<video>.<k>`` of one), or it comes from an aerial benchmark (UAV123, DTB70, UAVDT)."""
    from ..data import heldout
    from ..data.sources import source_of

    name = Path(str(getattr(source, "name", source))).name
    stem = Path(name).stem
    if not isinstance(getattr(source, "aerial", None), bool) and (stem in aerial_videos or
                                                                  stem.split(".")[0] in aerial_videos):
        return True
    return heldout.is_aerial(source, source_of(name))


def source_weights(sources: list, aerial_weight: float, aerial_videos: set[str]) -> list[float] | None:
    """How often each source is drawn: ``aerial_weight`` for aerial ones, 1 for the rest; None (every source
    equally, the same pairs as before the option existed) when ``aerial_weight`` is 1."""
    if not aerial_weight > 0:
        raise InputError(f"data.aerial_weight must be > 0, got {aerial_weight}")
    if aerial_weight == 1.0:
        return None
    return [aerial_weight if is_aerial(s, aerial_videos) else 1.0 for s in sources]


def pair_spec_for(cfg, spec: TrackerSpec, rank: int = 0) -> PairSpec:
    """How the run samples and augments pairs: NanoTrack's settings (:class:`PairSpec`) with ``data.augment``'s
    changes, read like every other config key; the crop sizes and context come from the teacher's spec, the
    seed from the run (and the rank)."""
    from .config import from_dict

    augment = dict(cfg.data.augment or {})
    fixed = {"exemplar_size": spec.exemplar_size, "instance_size": spec.instance_size,
             "context_amount": spec.context_amount, "seed": cfg.seed + 7919 * rank}
    if set(augment) & set(fixed):
        raise InputError(f"data.augment cannot set {sorted(set(augment) & set(fixed))}: the crop sizes and context "
                         "come from the teacher's spec, the seed from the run's seed")
    return from_dict(PairSpec, {**augment, **fixed}, prefix="data.augment.")


def make_loader_factory(cfg, dist) -> Callable[..., Iterator[dict]]:
    """``factory(start_step, workers=None)`` -> endless batches, continuing exactly where ``start_step`` left
    off."""
    from ..checkpoint import read_spec

    spec: TrackerSpec = read_spec(cfg.teacher)
    sources = gather_sources(cfg.data, cfg.data.split)
    sources += pool_sources(cfg.data, cfg.teacher, held_out_names(cfg.data.split))
    pair_spec = pair_spec_for(cfg, spec, dist.rank)
    per_epoch = max(cfg.data.batch_size, cfg.data.samples_per_epoch // cfg.data.batch_size * cfg.data.batch_size)
    weights = source_weights(sources, cfg.data.aerial_weight, aerial_pool_names(cfg.data))
    dataset = PairDataset(sources, pair_spec, spec, per_epoch, weights=weights)

    def batches(start_step: int, workers: int | None = None) -> Iterator[dict]:
        """Batches from ``start_step`` on; ``workers`` overrides ``data.workers`` (the same batches either way)."""
        bs, workers = cfg.data.batch_size, cfg.data.workers if workers is None else workers
        total = (cfg.steps + 1) * bs
        stream = _Continuous(dataset, total)
        # spawn, not fork: forking after torch/OpenCV started their thread pools can deadlock the workers
        extra = dict(multiprocessing_context="spawn", persistent_workers=True) if workers > 0 else {}
        loader = DataLoader(stream, batch_size=bs, sampler=range(start_step * bs, total), drop_last=True,
                            num_workers=workers, collate_fn=collate, worker_init_fn=worker_init, **extra)
        yield from loader
        raise DataError("the batch stream ended before the last training step")

    return batches
