"""Per-sequence attribute flags (DTB70's ``att/<Seq>.txt`` files and files laid out the same way)."""
from __future__ import annotations

import os
from pathlib import Path

from edgetrack.errors import DataError

from .gtfile import read_flags

#: DTB70's 11 attributes, in the order of the flags in its ``att/<Seq>.txt`` files.
DTB70_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("SV", "scale variation"),
    ("ARV", "aspect ratio variation"),
    ("OCC", "occlusion"),
    ("DEF", "deformation"),
    ("FCM", "fast camera motion"),
    ("IPR", "in-plane rotation"),
    ("OPR", "out-of-plane rotation"),
    ("OV", "out-of-view"),
    ("BC", "background clutter"),
    ("SOA", "similar objects around"),
    ("MB", "motion blur"),
)
DTB70_CODES: tuple[str, ...] = tuple(code for code, _ in DTB70_ATTRIBUTES)
ATTRIBUTE_LABELS: dict[str, str] = dict(DTB70_ATTRIBUTES)


def attribute_codes(n_flags: int) -> tuple[str, ...]:
    """Codes for a file with ``n_flags`` flags: DTB70's for 11, ``A1..An`` otherwise."""
    if n_flags == len(DTB70_CODES):
        return DTB70_CODES
    return tuple(f"A{i + 1}" for i in range(n_flags))


def read_attribute_file(path: str | os.PathLike) -> dict[str, bool]:
    """One sequence's flags as ``{code: flag}``."""
    flags = read_flags(path)
    if len(flags) == 0:
        raise DataError(f"{path}: no attribute flags")
    return dict(zip(attribute_codes(len(flags)), (bool(f) for f in flags)))


def read_attribute_dir(folder: str | os.PathLike, names: list[str]) -> dict[str, dict[str, bool]]:
    """Flags for each sequence in ``names`` that has ``<folder>/<name>.txt`` (matched case-insensitively).

    Sequences without a file are left out. All files must hold the same number of flags.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"attribute folder not found: {folder}")
    files = {p.stem.lower(): p for p in folder.glob("*.txt")}
    out: dict[str, dict[str, bool]] = {}
    for name in names:
        path = files.get(name.lower())
        if path is not None:
            out[name] = read_attribute_file(path)
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        raise DataError(f"{folder}: attribute files hold different numbers of flags {sorted(lengths)}")
    return out


def find_attribute_dir(root: Path) -> Path | None:
    """``<root>/att`` or ``<root>/../att`` (DTB70 keeps its flags beside or above the sequences)."""
    for cand in (root / "att", root.parent / "att", root / "anno" / "att"):
        if cand.is_dir() and any(cand.glob("*.txt")):
            return cand
    return None
