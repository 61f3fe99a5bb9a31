"""UAV123 / UAV20L / UAV123@10fps reader.

Layout: ``<root>/data_seq/<UAV123|UAV123_10fps>/<video>/000001.jpg`` and ``<root>/anno/<version>/<seq>.txt``.
Several UAV123 sequences (``car16_2``, ``group1_3`` ...) are frame ranges of one video folder. Their ranges come,
in this order of preference, from a ``configSeqs*.m`` file (given, or found in ``<root>``), or from the built-in
table below (UAV123 at 30 fps, from the benchmark's ``configSeqs.m``). For UAV123@10fps without a config file,
ranges are derived from the 30 fps table as ``(frame - 1) // 3 + 1``, which reproduces the 10 fps release's
``configSeqs.m`` for the entries checked (e.g. bird1_2 259-493, uav1_3 825-1157, car6_5 1309-1621).
Sequences not in any table read their whole folder from frame 1 for as many frames as annotation rows.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from edgetrack.errors import DataError

from .attributes import read_attribute_dir
from .gtfile import read_boxes
from .sequence import Dataset, Sequence

#: UAV123 (30 fps) sub-sequences: name -> (first frame, last frame), 1-based, inclusive, in folder ``name[:-2]``.
UAV123_RANGES: dict[str, tuple[int, int]] = {
    "bird1_1": (1, 253), "bird1_2": (775, 1477), "bird1_3": (1573, 2437), "car1_1": (1, 751),
    "car1_2": (751, 1627), "car1_3": (1627, 2629), "car6_1": (1, 487), "car6_2": (487, 1807),
    "car6_3": (1807, 2953), "car6_4": (2953, 3925), "car6_5": (3925, 4861), "car8_1": (1, 1357),
    "car8_2": (1357, 2575), "car16_1": (1, 415), "car16_2": (415, 1993), "group1_1": (1, 1333),
    "group1_2": (1333, 2515), "group1_3": (2515, 3925), "group1_4": (3925, 4873), "group2_1": (1, 907),
    "group2_2": (907, 1771), "group2_3": (1771, 2683), "group3_1": (1, 1567), "group3_2": (1567, 2827),
    "group3_3": (2827, 4369), "group3_4": (4369, 5527), "person2_1": (1, 1189),
    "person2_2": (1189, 2623), "person4_1": (1, 1501), "person4_2": (1501, 2743),
    "person5_1": (1, 877), "person5_2": (877, 2101), "person7_1": (1, 1249), "person7_2": (1249, 2065),
    "person8_1": (1, 1075), "person8_2": (1075, 1525), "person12_1": (1, 601),
    "person12_2": (601, 1621), "person14_1": (1, 847), "person14_2": (847, 1813),
    "person14_3": (1813, 2923), "person17_1": (1, 1501), "person17_2": (1501, 2347),
    "person19_1": (1, 1243), "person19_2": (1243, 2791), "person19_3": (2791, 4357),
    "truck4_1": (1, 577), "truck4_2": (577, 1261), "uav1_1": (1, 1555), "uav1_2": (1555, 2377),
    "uav1_3": (2473, 3469),
}

VERSIONS = ("UAV123", "UAV20L", "UAV123_10fps")

_CONFIG_ENTRY = re.compile(
    r"'name'\s*,\s*'([^']+)'\s*,\s*'path'\s*,\s*'([^']*)'\s*,\s*'startFrame'\s*,\s*(\d+)\s*,"
    r"\s*'endFrame'\s*,\s*(\d+)(?:\s*,\s*'nz'\s*,\s*(\d+))?(?:\s*,\s*'ext'\s*,\s*'([^']+)')?"
)


def parse_config_seqs(path: str | os.PathLike) -> dict[str, tuple[str, int, int, int, str]]:
    """Parse a MATLAB ``configSeqs.m``: name -> (folder, first, last, digits, extension)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    out = {}
    for m in _CONFIG_ENTRY.finditer(text):
        name, seq_path, start, end, nz, ext = m.groups()
        folder = re.split(r"[\\/]", seq_path.rstrip("\\/"))[-1] if seq_path.strip("\\/") else name
        if folder == "img":  # OTB-style paths end in <seq>/img/
            folder = re.split(r"[\\/]", seq_path.rstrip("\\/"))[-2]
        out[name] = (folder, int(start), int(end), int(nz or 6), ext or "jpg")
    if not out:
        raise DataError(f"{path}: no struct('name',...,'startFrame',...,'endFrame',...) entries found")
    return out


def _pick_version(root: Path, version: str | None) -> str:
    anno = root / "anno"
    present = [v for v in VERSIONS if (anno / v).is_dir()]
    if version is not None:
        if version not in VERSIONS:
            raise DataError(f"unknown UAV123 version '{version}'; choose one of {VERSIONS}")
        if version not in present:
            raise DataError(f"{anno / version} not found")
        return version
    if not present:
        raise DataError(f"{root}: no anno/UAV123, anno/UAV20L or anno/UAV123_10fps folder")
    return present[0]


def _frame_range(name: str, n_rows: int, version: str, config: dict | None) -> tuple[str, int, int, int, str]:
    """(folder, first, last, digits, extension) for one annotated sequence."""
    if config is not None and name in config:
        return config[name]
    if name in UAV123_RANGES and version != "UAV20L":
        start, end = UAV123_RANGES[name]
        if version == "UAV123_10fps":
            start, end = (start - 1) // 3 + 1, (end - 1) // 3 + 1
        return name.rsplit("_", 1)[0], start, end, 6, "jpg"
    return name, 1, n_rows, 6, "jpg"


def _read_one(data_dir: Path, anno: Path, version: str, config: dict | None) -> Sequence:
    name = anno.stem
    gt = read_boxes(anno)
    folder, start, end, nz, ext = _frame_range(name, len(gt), version, config)
    if end - start + 1 != len(gt):
        raise DataError(
            f"{anno}: {len(gt)} ground-truth rows but the frame range of '{name}' is {start}..{end} "
            f"({end - start + 1} frames)"
        )
    seq_dir = data_dir / folder
    if not seq_dir.is_dir():
        raise DataError(f"sequence '{name}': image folder not found: {seq_dir}")
    paths = [seq_dir / f"{i:0{nz}d}.{ext}" for i in range(start, end + 1)]
    for p in paths:
        if not p.is_file():
            raise DataError(f"sequence '{name}': missing image {p}")
    return Sequence(name=name, gt=gt, frame_paths=tuple(map(str, paths)))


def read_uav123(
    root: str | os.PathLike, version: str | None = None, config: str | os.PathLike | None = None
) -> Dataset:
    """Read UAV123 (default), UAV20L or UAV123_10fps from ``root`` (the folder holding anno/ and data_seq/)."""
    root = Path(root)
    version = _pick_version(root, version)
    if config is None:
        found = sorted(root.glob("configSeqs*.m"))
        config = found[0] if found else None
    table = parse_config_seqs(config) if config is not None else None
    data_dir = root / "data_seq" / ("UAV123_10fps" if version == "UAV123_10fps" else "UAV123")
    if not data_dir.is_dir():
        raise DataError(f"{data_dir} not found")
    annos = sorted((root / "anno" / version).glob("*.txt"))
    if not annos:
        raise DataError(f"{root / 'anno' / version}: no annotation files")
    seqs = [_read_one(data_dir, a, version, table) for a in annos]
    att_dir = root / "anno" / version / "att"
    attrs = read_attribute_dir(att_dir, [s.name for s in seqs]) if att_dir.is_dir() else {}
    seqs = [_with_attributes(s, attrs.get(s.name)) for s in seqs]
    codes = tuple(next(iter(attrs.values())).keys()) if attrs else ()
    return Dataset(version, tuple(seqs), "uav123", str(root), codes)


def _with_attributes(seq: Sequence, attributes: dict[str, bool] | None) -> Sequence:
    if not attributes:
        return seq
    return Sequence(seq.name, seq.gt, seq.frame_paths, None, seq.absent, dict(attributes), seq.gt_complete)
