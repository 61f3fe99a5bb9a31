"""Dataset readers: DTB70, OTB, a plain folder of sequences, GOT-10k, LaSOT (UAV123 in ``uav123.py``, a folder
of video files in ``videos.py``).

``open_dataset(root, format="auto")`` picks the reader; each reader returns a :class:`Dataset`.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from edgetrack.errors import DataError

from .attributes import DTB70_CODES, find_attribute_dir, read_attribute_dir
from .gtfile import read_boxes, read_flags
from .sequence import Dataset, Sequence, check_contiguous, list_frames
from .uav123 import read_uav123
from .videofile import is_video_file
from .videos import read_videos

FORMATS = ("auto", "dtb70", "otb", "uav123", "got10k", "lasot", "folder", "videos")

#: OTB videos whose annotation covers only part of the frames: name -> (first, last) image, 1-based.
OTB_FRAME_RANGES: dict[str, tuple[int, int]] = {
    "david": (300, 770),
    "football1": (1, 74),
    "freeman3": (1, 460),
    "freeman4": (1, 283),
    "diving": (1, 215),
}

_GT_NAMES = ("groundtruth_rect.txt", "groundtruth.txt")


def _gt_files(seq_dir: Path) -> list[Path]:
    """Non-empty ground-truth files of a sequence folder (several for OTB's multi-target videos)."""
    files = sorted(seq_dir.glob("groundtruth_rect*.txt"))
    if not files and (seq_dir / "groundtruth.txt").is_file():
        files = [seq_dir / "groundtruth.txt"]
    return [f for f in files if f.read_text(encoding="utf-8-sig", errors="replace").strip()]


def _otb_like_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    dirs = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    return [d for d in dirs if (d / "img").is_dir() or any(d.glob("groundtruth*.txt"))]


def _otb_like_sequences(seq_dir: Path, otb_ranges: bool) -> list[Sequence]:
    img_dir = seq_dir / "img" if (seq_dir / "img").is_dir() else seq_dir
    frames = list_frames(img_dir)
    gt_files = _gt_files(seq_dir)
    if not gt_files:
        raise DataError(f"sequence '{seq_dir.name}': missing ground truth (groundtruth_rect.txt) in {seq_dir}")
    if not frames:
        raise DataError(f"sequence '{seq_dir.name}': no images in {img_dir}")
    check_contiguous(frames, f"sequence '{seq_dir.name}' ({img_dir})")
    out = []
    for k, gt_file in enumerate(gt_files, start=1):
        gt = read_boxes(gt_file)
        name = seq_dir.name if len(gt_files) == 1 else f"{seq_dir.name}.{k}"
        seq_frames = frames
        rng = OTB_FRAME_RANGES.get(seq_dir.name.lower()) if otb_ranges else None
        if rng is not None and len(frames) != len(gt) and rng[1] - rng[0] + 1 == len(gt):
            seq_frames = frames[rng[0] - 1 : rng[1]]
        if len(seq_frames) != len(gt):
            raise DataError(
                f"sequence '{name}': {len(seq_frames)} images in {img_dir} but {len(gt)} rows in {gt_file}"
            )
        out.append(Sequence(name=name, gt=gt, frame_paths=tuple(map(str, seq_frames))))
    return out


def _attach_attributes(seqs: list[Sequence], att_dir: Path | None) -> tuple[list[Sequence], tuple[str, ...]]:
    if att_dir is None:
        return seqs, ()
    flags = read_attribute_dir(att_dir, [s.name for s in seqs])
    if not flags:
        return seqs, ()
    codes = tuple(next(iter(flags.values())).keys())
    out = [replace(s, attributes=dict(flags[s.name])) if s.name in flags else s for s in seqs]
    return out, codes


def read_folder(
    root: str | os.PathLike,
    attributes: str | os.PathLike | None = None,
    *,
    format: str = "folder",
    otb_ranges: bool = False,
) -> Dataset:
    """Read ``<root>/<seq>/img/<frames>`` + ``<root>/<seq>/groundtruth_rect.txt`` (DTB70 layout).

    Frames may also sit directly in ``<seq>/``; ``groundtruth.txt`` is accepted too. Attribute flags are
    read from ``attributes`` (a folder of ``<seq>.txt``), else from ``<root>/att`` or ``<root>/../att``.
    """
    root = Path(root)
    seqs: list[Sequence] = []
    for seq_dir in _otb_like_dirs(root):
        seqs.extend(_otb_like_sequences(seq_dir, otb_ranges))
    if not seqs:
        raise DataError(f"no sequences found in {root} (expected <seq>/img/0001.jpg and <seq>/groundtruth_rect.txt)")
    att_dir = Path(attributes) if attributes is not None else find_attribute_dir(root)
    seqs, codes = _attach_attributes(seqs, att_dir)
    return Dataset(root.name, tuple(seqs), format, str(root), codes)


def read_dtb70(root: str | os.PathLike, attributes: str | os.PathLike | None = None) -> Dataset:
    """DTB70: the folder layout with DTB70's 11 attribute flags when an ``att`` folder is found or given."""
    ds = read_folder(root, attributes, format="dtb70")
    if ds.attribute_names and ds.attribute_names != DTB70_CODES:
        raise DataError(f"attribute files for {root} do not hold DTB70's 11 flags")
    return ds


def read_otb(root: str | os.PathLike, attributes: str | os.PathLike | None = None) -> Dataset:
    """OTB-2013/2015: the folder layout plus OTB's quirks (mixed separators, ``groundtruth_rect.<k>.txt``
    multi-target videos named ``<Seq>.<k>``, and the partial-annotation videos in ``OTB_FRAME_RANGES``)."""
    return read_folder(root, attributes, format="otb", otb_ranges=True)


def read_got10k(root: str | os.PathLike) -> Dataset:
    """GOT-10k val or test split: ``<root>/<seq>/00000001.jpg``, ``groundtruth.txt``, ``absence.label``.

    On the test split only the first box is public: those sequences have ``gt_complete=False``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    listing = root / "list.txt"
    if listing.is_file():
        names = [n.strip() for n in listing.read_text(errors="replace").splitlines() if n.strip()]
    else:
        names = sorted(d.name for d in root.iterdir() if (d / "groundtruth.txt").is_file())
    if not names:
        splits = [s for s in ("train", "val", "test") if (root / s).is_dir()]
        hint = f"; point at one split folder ({', '.join(splits)})" if splits else ""
        raise DataError(f"no GOT-10k sequences in {root}{hint}")
    seqs = [_got10k_sequence(root / n) for n in names]
    return Dataset(root.name, tuple(seqs), "got10k", str(root))


def _got10k_sequence(seq_dir: Path) -> Sequence:
    frames = list_frames(seq_dir)
    if not frames:
        raise DataError(f"sequence '{seq_dir.name}': no images in {seq_dir}")
    check_contiguous(frames, f"sequence '{seq_dir.name}'")
    gt = read_boxes(seq_dir / "groundtruth.txt")
    complete = not (len(gt) == 1 and len(frames) > 1)
    absent = None
    if (seq_dir / "absence.label").is_file() and complete:
        absent = read_flags(seq_dir / "absence.label")
    return Sequence(seq_dir.name, gt, tuple(map(str, frames)), None, absent, {}, complete)


def _lasot_dirs(root: Path) -> list[Path]:
    def is_seq(d: Path) -> bool:
        return (d / "img").is_dir() and (d / "groundtruth.txt").is_file()

    found: list[Path] = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if is_seq(d):
            found.append(d)
        else:
            found.extend(s for s in sorted(d.iterdir()) if s.is_dir() and is_seq(s))
    return found


def read_lasot(root: str | os.PathLike) -> Dataset:
    """LaSOT: ``<root>/<class>/<class>-<n>/img/00000001.jpg`` (or ``<root>/<class>-<n>/...``),
    ``groundtruth.txt``; frames flagged in ``full_occlusion.txt`` or ``out_of_view.txt`` are absent."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    seqs = []
    for seq_dir in _lasot_dirs(root):
        frames = list_frames(seq_dir / "img")
        if not frames:
            raise DataError(f"sequence '{seq_dir.name}': no images in {seq_dir / 'img'}")
        check_contiguous(frames, f"sequence '{seq_dir.name}'")
        gt = read_boxes(seq_dir / "groundtruth.txt")
        absent = None
        for flag_file in ("full_occlusion.txt", "out_of_view.txt"):
            if (seq_dir / flag_file).is_file():
                flags = read_flags(seq_dir / flag_file)
                if len(flags) != len(gt):
                    raise DataError(f"{seq_dir / flag_file}: {len(flags)} flags for {len(gt)} frames")
                absent = flags if absent is None else absent | flags
        if len(frames) != len(gt):
            raise DataError(f"sequence '{seq_dir.name}': {len(frames)} images but {len(gt)} ground-truth rows")
        seqs.append(Sequence(seq_dir.name, gt, tuple(map(str, frames)), None, absent))
    if not seqs:
        raise DataError(f"no LaSOT sequences in {root} (expected <class>/<class>-<n>/img and groundtruth.txt)")
    return Dataset(root.name, tuple(seqs), "lasot", str(root))


def detect_format(root: str | os.PathLike) -> str:
    """Guess a dataset's layout from its files; raises :class:`DataError` when nothing fits."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    if (root / "anno").is_dir() and (root / "data_seq").is_dir():
        return "uav123"
    children = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    for d in children:
        if (d / "groundtruth.txt").is_file() and ((d / "absence.label").is_file() or list_frames(d)):
            return "got10k"
        if (d / "groundtruth.txt").is_file() and (d / "full_occlusion.txt").is_file():
            return "lasot"
        if any((s / "full_occlusion.txt").is_file() for s in d.iterdir() if s.is_dir()):
            return "lasot"
    if any(_is_otb_dir(d) for d in children):
        return "otb"
    if any((d / "img").is_dir() or (d / "groundtruth_rect.txt").is_file() for d in children):
        return "dtb70" if find_attribute_dir(root) is not None else "folder"
    if any(is_video_file(p) for p in root.iterdir()):
        return "videos"
    raise DataError(
        f"cannot tell the dataset format of {root}: expected <seq>/img + groundtruth_rect.txt (DTB70/OTB), "
        "anno/ + data_seq/ (UAV123), <seq>/groundtruth.txt + absence.label (GOT-10k) or "
        "<class>/<class>-<n>/img (LaSOT) or video files (clip.mp4 + clip.txt)"
    )


def _is_otb_dir(d: Path) -> bool:
    return d.name.lower() in OTB_FRAME_RANGES or any(d.glob("groundtruth_rect.*.txt"))


def open_dataset(
    root: str | os.PathLike,
    format: str = "auto",
    *,
    attributes: str | os.PathLike | None = None,
    sequences: list[str] | None = None,
    split: str | None = None,
) -> Dataset:
    """Open a dataset folder in any supported ``format`` (see ``FORMATS``), optionally keeping only
    the named ``sequences``; ``attributes`` is a folder of per-sequence flag files (DTB70 layout).
    ``split`` (video folders with a ``MANIFEST.tsv`` only) keeps the manifest rows of that split."""
    if format not in FORMATS:
        raise DataError(f"unknown dataset format '{format}'; choose one of {', '.join(FORMATS)}")
    try:
        Path(root).exists()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise DataError(f"dataset folder not found: {str(root)[:200]!r} ({exc.strerror or exc})") from exc
    fmt = detect_format(root) if format == "auto" else format
    if split is not None and fmt != "videos":
        raise DataError(f"a split ('{split}') can be selected only in a video folder with a MANIFEST.tsv, "
                        f"not in a '{fmt}' dataset ({root})")
    readers = {
        "dtb70": lambda: read_dtb70(root, attributes),
        "otb": lambda: read_otb(root, attributes),
        "folder": lambda: read_folder(root, attributes),
        "uav123": lambda: read_uav123(root),
        "got10k": lambda: read_got10k(root),
        "lasot": lambda: read_lasot(root),
        "videos": lambda: read_videos(root, split=split),
    }
    ds = readers[fmt]()
    if attributes is not None and fmt in ("uav123", "got10k", "lasot", "videos"):
        seqs, codes = _attach_attributes(list(ds.sequences), Path(attributes))
        ds = Dataset(ds.name, tuple(seqs), ds.format, ds.root, codes)
    return ds.select(sequences) if sequences is not None else ds
