"""Train / validation splits of sequences, made by video so no footage is on both sides.

Sub-sequences of one video (UAV123's ``group1_1``, ``group1_3``; OTB's multi-target ``Jogging.1``; cut
versions like ``Human3_first199``) share a *video key* (:func:`video_key`) and always land on the same side.
Splits ship as package data (``edgetrack/data/splits/<name>.json``); :func:`load_split` reads them and
:func:`assert_disjoint` refuses a training set that touches the validation videos.

Regenerate the dev split from the shared sequences with ``python -m edgetrack.training.split <dev-dir>``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from edgetrack.data.heldout import SPLITS_DIR, read_split
from edgetrack.errors import DataError

# Sequence-name prefixes of the sources (longest first), and the source family each one counts towards.
SOURCE_PREFIXES = (("uav123_10fps_", "uav123"), ("uav123_", "uav123"), ("vot2015_", "vot"), ("vot2016_", "vot"),
                   ("vot2018_", "vot"), ("vot_", "vot"), ("otb_", "otb"), ("dtb70_", "dtb70"))
# The same footage under different names: OTB's Jogging-1/-2 are two targets of one video; pysot's demo
# bag.avi is the VOT "bag" clip (its frames match dev-sequences/vot_bag).
VIDEO_ALIASES = {"jogging1": "jogging", "jogging2": "jogging", "pysot_bag": "bag"}
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def _name_of(item: Any) -> str:
    name = getattr(item, "name", item)
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name:
        raise DataError(f"expected a sequence name, a path or an object with .name, got {item!r}")
    return name


def source_of(name: str) -> str:
    """The source family of a sequence name: ``otb``, ``uav123``, ``vot``, ``dtb70`` or ``other``."""
    lower = Path(_name_of(name)).name.lower()
    return next((family for prefix, family in SOURCE_PREFIXES if lower.startswith(prefix)), "other")


def video_key(name: Any) -> str:
    """The video a sequence (or a video file) comes from: source prefix and ``_firstN`` dropped, then
    UAV123 sub-sequence (``group1_3``) and multi-target (``Skating2.1``; ``otb_Jogging-2``) suffixes stripped.
    ``-N`` counts only on ``otb_`` names: LaSOT's ``airplane-1`` and ``airplane-2`` are different videos.

    UAV123 footage gets a ``uav123/`` namespace; OTB and VOT share one (VOT reuses OTB videos, e.g. Bolt).
    """
    text = _name_of(name)
    base = Path(text).name
    if Path(base).suffix.lower() in VIDEO_SUFFIXES:
        base = Path(base).stem
    lower = base.lower()
    family = source_of(lower)
    for prefix, _ in SOURCE_PREFIXES:
        if lower.startswith(prefix):
            lower = lower[len(prefix):]
            break
    lower = re.sub(r"_first\d+$", "", lower)
    lower = re.sub(r"[.-]\d+$" if family == "otb" else r"\.\d+$", "", lower)
    lower = re.sub(r"(?<=\d)_\d+$", "", lower)
    lower = VIDEO_ALIASES.get(lower, lower)
    return f"uav123/{lower}" if family == "uav123" else lower


def assert_disjoint(train: Iterable[Any], val: Iterable[Any]) -> None:
    """Raise :class:`DataError` if a training item is a validation sequence or comes from a validation video.

    Items are names, paths or objects with ``.name`` (Sequences, VideoSources).
    """
    train_names = {_name_of(t) for t in train}
    val_names = {_name_of(v) for v in val}
    val_keys: dict[str, str] = {video_key(v): v for v in sorted(val_names)}
    same = sorted(train_names & val_names)
    if same:
        raise DataError(f"training set contains validation sequences: {same}")
    shared = sorted(f"{t} (video '{video_key(t)}', like validation '{val_keys[video_key(t)]}')"
                    for t in train_names if video_key(t) in val_keys)
    if shared:
        raise DataError(f"training set shares videos with the validation set: {shared}")


def load_split(name: str = "dev") -> dict[str, list[str]]:
    """A packaged split: ``train`` and ``val`` sequence names, and ``unlabeled_train`` / ``unlabeled_val``
    video files (names under ``shared/data/videos``) assigned by the same video keys."""
    data = read_split(name)
    out = {key: list(data.get(key, [])) for key in ("train", "val", "unlabeled_train", "unlabeled_val")}
    if not out["train"] or not out["val"]:
        raise DataError(f"split file {SPLITS_DIR / f'{name}.json'} needs non-empty 'train' and 'val' lists")
    assert_disjoint(out["train"] + out["unlabeled_train"], out["val"] + out["unlabeled_val"])
    return out


def _best_val_videos(videos: Mapping[str, int], fraction: float, tolerance: float, seed: int) -> tuple[str, ...]:
    """The validation videos of one source: the frame share closest to ``fraction`` (anything within
    ``tolerance`` counts as equal), then the video-count share closest to ``fraction``, then a seeded hash."""
    keys = sorted(videos)
    total = sum(videos.values())

    def score(subset: tuple[str, ...]) -> tuple[float, float, str]:
        frames = sum(videos[k] for k in subset) / total
        count = len(subset) / len(keys)
        digest = hashlib.sha256(f"{seed}:{','.join(subset)}".encode()).hexdigest()
        return max(0.0, abs(frames - fraction) - tolerance), abs(count - fraction), digest

    if len(keys) > 20:
        raise DataError(f"{len(keys)} videos in one source is too many for an exhaustive split search")
    subsets = itertools.chain.from_iterable(itertools.combinations(keys, r) for r in range(len(keys) + 1))
    return min(subsets, key=score)


def make_split(frames: Mapping[str, int], fraction: float = 0.3, tolerance: float = 0.03,
               seed: int = 0) -> dict[str, list[str]]:
    """Split sequences (name -> frame count) by video key, source by source, so that about ``fraction`` of
    each source's frames are validation frames. Deterministic for a given ``seed``."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"validation fraction must be in (0, 1), got {fraction}")
    by_source: dict[str, dict[str, int]] = {}
    for name, count in frames.items():
        videos = by_source.setdefault(source_of(name), {})
        videos[video_key(name)] = videos.get(video_key(name), 0) + int(count)
    val_keys: set[str] = set()
    for source in sorted(by_source):
        val_keys.update(_best_val_videos(by_source[source], fraction, tolerance, seed))
    val = sorted(n for n in frames if video_key(n) in val_keys)
    train = sorted(n for n in frames if video_key(n) not in val_keys)
    return {"train": train, "val": val}


def split_videos(videos: Iterable[str], val: Iterable[str]) -> dict[str, list[str]]:
    """Unlabeled video files on the side of the validation sequences they share footage with, else train."""
    keys = {video_key(v) for v in val}
    names = sorted(Path(v).name for v in videos)
    return {"unlabeled_train": [v for v in names if video_key(v) not in keys],
            "unlabeled_val": [v for v in names if video_key(v) in keys]}


def dev_split_document(dev_dir: str | os.PathLike, videos_dir: str | os.PathLike | None = None,
                       fraction: float = 0.3, seed: int = 0) -> dict[str, Any]:
    """The JSON document of the dev split, computed from the sequence folders (``<seq>/img/*``)."""
    root = Path(dev_dir)
    if not root.is_dir():
        raise DataError(f"dev sequences not found at {root}")
    frames = {d.name: sum(1 for _ in (d / "img").iterdir()) for d in sorted(root.iterdir()) if (d / "img").is_dir()}
    if not frames:
        raise DataError(f"no <seq>/img folders in {root}")
    split = make_split(frames, fraction, seed=seed)
    vids = sorted(p.name for p in Path(videos_dir).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) \
        if videos_dir is not None and Path(videos_dir).is_dir() else []
    doc: dict[str, Any] = {
        "name": "dev", "fraction": fraction, "seed": seed,
        "rule": "by video key (edgetrack.training.split.video_key), per source (otb/uav123/vot), "
                "about `fraction` of each source's frames in val",
        **split, **split_videos(vids, split["val"]),
        "frames": frames,
        "video_keys": {n: video_key(n) for n in [*frames, *vids]},
    }
    assert_disjoint(doc["train"] + doc["unlabeled_train"], doc["val"] + doc["unlabeled_val"])
    return doc


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m edgetrack.training.split <dev-sequences dir> [<videos dir>] [<out.json>]",
              file=sys.stderr)
        return 2
    doc = dev_split_document(args[0], args[1] if len(args) > 1 else None)
    out = Path(args[2]) if len(args) > 2 else SPLITS_DIR / "dev.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}: {len(doc['train'])} train / {len(doc['val'])} val sequences")
    return 0


if __name__ == "__main__":
    sys.exit(main())
