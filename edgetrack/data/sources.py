"""Where a sequence comes from, as a short label for per-source reporting (``OTB``, ``UAV123``, ``VOT``, ...)."""
from __future__ import annotations

from typing import Any

# Lower-case prefixes of sequence names or dataset names (longest match first) and their labels.
_KNOWN = (
    ("youtube-vos", "YouTube-VOS"), ("got-10k", "GOT-10k"), ("got10k", "GOT-10k"), ("uav123", "UAV123"),
    ("dtb70", "DTB70"), ("uavdt", "UAVDT"), ("ptbtir", "PTB-TIR"), ("ptb-tir", "PTB-TIR"),
    ("lasot", "LaSOT"), ("ytvos", "YouTube-VOS"), ("davis", "DAVIS"), ("otb", "OTB"),
    ("vot", "VOT"),
)


def known_source(text: str) -> str | None:
    """The label of a known benchmark that ``text`` (a name or a dataset title) starts with, else None.

    >>> known_source("OTB-100 Boy"), known_source("vot2015_car1"), known_source("sam2_dog")
    ('OTB', 'VOT', None)
    """
    lower = text.strip().lower()
    return next((label for prefix, label in _KNOWN if lower.startswith(prefix)), None)


def source_of(seq: Any) -> str:
    """The source of a sequence (or of a sequence name).

    A sequence with a non-empty ``source`` attribute (video folders: from ``MANIFEST.tsv`` when there is one)
    gives that. Otherwise the name decides: ``otb_*`` -> ``OTB``, ``uav123_*`` -> ``UAV123``, ``vot*`` ->
    ``VOT`` (also DTB70, DAVIS, ``ytvos`` -> YouTube-VOS, GOT-10k, LaSOT); another ``<prefix>_<rest>`` name
    gives its lower-case prefix (``sam2_dog`` -> ``sam2``); a name without ``_`` gives ``other``.
    """
    label = getattr(seq, "source", None)
    if isinstance(label, str) and label:
        return label
    name = str(getattr(seq, "name", seq))
    return known_source(name) or (name.split("_", 1)[0].lower() if "_" in name.strip("_") else "other")
