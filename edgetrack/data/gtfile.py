"""Parsing and writing of ground-truth and result box files (``x,y,w,h`` per line) and 0/1 flag files.

Accepted separators: commas, tabs, spaces, or any mix of them (OTB mixes them even within one file).
A row holding ``NaN`` in any field is an absent-target row and is returned as four NaNs.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from edgetrack.errors import DataError
from edgetrack.geometry import MAX_BOX_VALUE

from .fileio import atomic_write_text

_SPLIT = re.compile(r"[,\s]+")


def _parse_number(token: str, where: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise DataError(f"{where}: '{token}' is not a number") from None
    if math.isinf(value):
        raise DataError(f"{where}: infinite value '{token}'")
    return value


def parse_boxes(text: str, source: str = "<text>") -> np.ndarray:
    """Parse box lines into an (N, 4) float64 array; NaN rows mark an absent target.

    Blank lines at the end are ignored; a blank line between boxes, a line without exactly four
    numbers, an infinite value, a value beyond ``MAX_BOX_VALUE`` pixels or a negative width or height raises
    :class:`DataError` naming ``source`` and the line number.
    """
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    boxes = np.empty((len(lines), 4), dtype=np.float64)
    for i, line in enumerate(lines):
        where = f"{source}, line {i + 1}"
        tokens = [t for t in _SPLIT.split(line.strip()) if t]
        if len(tokens) != 4:
            got = "an empty line" if not tokens else f"{len(tokens)} values"
            raise DataError(f"{where}: expected 4 values (x,y,w,h), got {got}: {line.strip()!r}")
        row = [_parse_number(t, where) for t in tokens]
        boxes[i] = np.nan if any(math.isnan(v) for v in row) else _checked(row, where)
    return boxes


def _checked(row: list[float], where: str) -> list[float]:
    """A box row refused when no scoring can use it: values beyond any image, or a negative width/height."""
    big = [v for v in row if abs(v) > MAX_BOX_VALUE]
    if big:
        raise DataError(f"{where}: value {big[0]:g} is beyond {MAX_BOX_VALUE:g} pixels; boxes are x,y,w,h in "
                        "pixels of the frame")
    if row[2] < 0 or row[3] < 0:
        raise DataError(f"{where}: negative width or height (w={row[2]:g}, h={row[3]:g}); boxes are x,y,w,h with "
                        "w, h >= 0 (an absent target is a row of NaN)")
    return row


def _read_text(path: Path, what: str) -> str:
    try:
        if not path.is_file():
            raise DataError(f"{what} not found: {path}")
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a text file ({e})") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from None


def read_boxes(path: str | os.PathLike) -> np.ndarray:
    """Read a box file (see :func:`parse_boxes`); a missing or empty file raises :class:`DataError`."""
    path = Path(path)
    boxes = parse_boxes(_read_text(path, "ground-truth file"), str(path))
    if len(boxes) == 0:
        raise DataError(f"{path}: the file holds no boxes")
    return boxes


def format_boxes(boxes: np.ndarray, fmt: str = "%.4f", sep: str = ",") -> str:
    """Format an (N, 4) array as one ``x,y,w,h`` line per row (NaN written as ``nan``)."""
    try:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    except (TypeError, ValueError) as e:
        raise DataError(f"boxes must be an (N, 4) array of numbers: {e}") from None
    return "".join(sep.join(fmt % v for v in row) + "\n" for row in boxes)


def write_boxes(path: str | os.PathLike, boxes: np.ndarray, fmt: str = "%.4f") -> Path:
    """Write boxes comma-separated, atomically."""
    if Path(path).is_dir():
        raise DataError(f"cannot write boxes to {path}: it is a folder; give a file name such as boxes.txt")
    return atomic_write_text(path, format_boxes(boxes, fmt))


def parse_flags(text: str, source: str = "<text>") -> np.ndarray:
    """Parse 0/1 flags separated by commas, spaces or newlines into a bool array."""
    tokens = [t for t in _SPLIT.split(text.strip()) if t]
    flags = np.empty(len(tokens), dtype=bool)
    for i, token in enumerate(tokens):
        try:
            value = float(token)
        except ValueError:
            raise DataError(f"{source}: value {i + 1} '{token}' is not a 0/1 flag") from None
        if value not in (0.0, 1.0):
            raise DataError(f"{source}: value {i + 1} '{token}' is not a 0/1 flag")
        flags[i] = value == 1.0
    return flags


def read_flags(path: str | os.PathLike) -> np.ndarray:
    """Read a 0/1 flag file (one per line, or one comma-separated line)."""
    path = Path(path)
    return parse_flags(_read_text(path, "flag file"), str(path))
