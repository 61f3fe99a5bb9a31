"""The held-out set every decision is made on: one function, called by the benchmarks, calibration, tuning and
the export gate alike.

It is the union of three parts, none of them ever trained on:

- ``dev-val``: the validation sequences of the package's dev split (``../shared/data/dev-sequences``, frames
  downscaled to 640 px);
- ``pool-val``: the ``val`` rows of the training pool's ``MANIFEST.tsv`` (``data/train-videos``) with a box for
  every frame;
- ``val-videos``: ``data/val-videos``, labelled footage kept for validation only, six aerial sequences at the
  resolution they were recorded (DTB70, UAVDT, UAV123@10fps at up to 1280x720) and ground-level, thermal and
  long-term ones.

Each sequence carries its part, its source (``OTB``, ``UAV123``, ``DTB70``, ``UAVDT``, ``VOT``, ``PTB-TIR``) and
whether it was filmed from the air, so that results are reported per part, per source and aerial vs ground.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .sequence import Dataset

PARTS = ("dev-val", "pool-val", "val-videos")
SPLITS_DIR = Path(__file__).resolve().parent / "splits"
#: Dev sequences (named by their source) filmed from the air; every other dev sequence is ground-level.
AERIAL_SOURCES = frozenset({"UAV123", "DTB70", "UAVDT"})


@dataclass(frozen=True)
class HeldOut:
    """The held-out sequences and, by sequence name, their part, source and aerial flag."""

    dataset: Dataset
    part: Mapping[str, str]
    source: Mapping[str, str]
    aerial: Mapping[str, bool]
    not_scored: Mapping[str, str]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.dataset]

    def groupings(self) -> dict[str, dict[str, str]]:
        """``{grouping: {sequence: label}}`` for per-group reporting: by part, by source, aerial vs ground."""
        return {"part": dict(self.part), "source": dict(self.source),
                "view": {n: "aerial" if a else "ground" for n, a in self.aerial.items()}}

    def select(self, parts: Iterable[str]) -> HeldOut:
        """The sequences of the given parts only."""
        keep = [n for n in self.names if self.part[n] in set(parts)]
        return HeldOut(self.dataset.select(keep), *({n: m[n] for n in keep} for m in
                                                    (self.part, self.source, self.aerial)), self.not_scored)


def read_split(split: str = "dev") -> dict:
    """The JSON object of a packaged split file (``data/splits/<split>.json``)."""
    path = SPLITS_DIR / f"{split}.json"
    if not path.is_file():
        known = sorted(p.stem for p in SPLITS_DIR.glob("*.json"))
        raise DataError(f"no split named {split!r}; known splits: {known}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"split file {path} is unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(f"split file {path} is unreadable: not a JSON object")
    return data


def split_names(split: str = "dev", side: str = "val") -> list[str]:
    """The sequence names of one side (``train`` or ``val``) of a packaged split (``data/splits/<split>.json``)."""
    names = read_split(split).get(side)
    if not isinstance(names, list):
        raise DataError(f"split file {SPLITS_DIR / f'{split}.json'} has no readable '{side}' list")
    return [str(n) for n in names]


def shared_root(shared: str | os.PathLike | None = None) -> Path:
    """``shared``, else ``$EDGETRACK_SHARED``; a DataError naming both when neither is given."""
    root = shared if shared is not None else os.environ.get("EDGETRACK_SHARED")
    if not root:
        raise DataError("no data folder: pass the folder holding data/dev-sequences, data/train-videos and "
                        "data/val-videos, or set EDGETRACK_SHARED")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    return root


def _dev_part(root: Path, split: str, skipped: dict[str, str]) -> list:
    from .readers import open_dataset

    folder = root / "data" / "dev-sequences"
    if not folder.is_dir():
        return []
    ds, names = open_dataset(folder, "folder"), split_names(split, "val")
    skipped.update({n: f"not in {folder}" for n in names if n not in ds.names})
    return list(ds.select([n for n in names if n in ds.names]))


def _video_part(folder: Path, skipped: dict[str, str]) -> list:
    from .videos import read_videos

    if not folder.is_dir():
        return []
    seqs = []
    for seq in read_videos(folder, split="val"):
        reason = seq.unscored_reason
        if reason is None:
            seqs.append(seq)
        else:
            skipped[seq.name] = reason
    return seqs


def is_aerial(seq, source: str) -> bool:
    """Whether ``seq`` was filmed from the air: its own ``aerial`` flag (a manifest's) where it has one, else
    whether ``source`` is an aerial benchmark (:data:`AERIAL_SOURCES`)."""
    flag = getattr(seq, "aerial", None)
    return flag if isinstance(flag, bool) else source in AERIAL_SOURCES


def held_out_set(shared: str | os.PathLike | None = None, split: str = "dev", parts: Iterable[str] = PARTS,
                 max_frames: int | None = None) -> HeldOut:
    """The held-out set under ``shared`` (default ``$EDGETRACK_SHARED``): the ``parts`` asked for, each
    sequence at the resolution of its files, cut to ``max_frames`` when given. Pool and val-videos rows
    without a box for every frame are left out and listed in ``not_scored``. A part whose folder is missing
    contributes nothing; a DataError when nothing at all is found."""
    from .sources import source_of

    root, parts = shared_root(shared), tuple(parts)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise DataError(f"unknown held-out part(s) {unknown}; known: {list(PARTS)}")
    skipped: dict[str, str] = {}
    found = {"dev-val": _dev_part(root, split, skipped) if "dev-val" in parts else [],
             "pool-val": _video_part(root / "data" / "train-videos", skipped) if "pool-val" in parts else [],
             "val-videos": _video_part(root / "data" / "val-videos", skipped) if "val-videos" in parts else []}
    seqs, part, source, aerial = [], {}, {}, {}
    for name in parts:
        for seq in found[name]:
            seq = seq.head(max_frames) if max_frames else seq
            seqs.append(seq)
            part[seq.name], source[seq.name] = name, source_of(seq)
            aerial[seq.name] = is_aerial(seq, source[seq.name])
    if not seqs:
        raise DataError(f"no held-out sequence under {root} (looked for data/dev-sequences, data/train-videos, "
                        f"data/val-videos; parts {list(parts)})")
    ds = Dataset("held-out", tuple(seqs), "mixed", str(root))
    return HeldOut(ds, part, source, aerial, skipped)
