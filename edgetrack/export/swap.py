"""Replacing a previous export only once the new one is complete.

An export is written and gated in a hidden staging folder beside its target (same file system); only then are
its files moved into place: a nested ``<format>-<precision>`` subfolder by swapping whole folders, a flat
export file by file (``os.replace``), then the previous export's graph files that the new one does not have
are removed. A run killed while exporting or gating leaves the previous export untouched; the staging folder
is removed on any error, and a staging folder left by a hard kill is hidden (``.<name>.export-*``) and removed
by the next export to the same target.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

#: The files an export writes into a format folder (the only names a re-export may remove).
EXPORT_FILES = ("template.onnx", "search.onnx", "template.xml", "template.bin", "search.xml", "search.bin",
                "template.engine", "search.engine", "spec.json", "export.json")


def staging_folder(final: Path) -> Path:
    """A fresh hidden folder beside ``final``; stale ones from killed runs are removed first."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.export-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.export-", dir=final.parent))


def _swap_dir(new: Path, final: Path) -> None:
    """Put folder ``new`` at ``final``: the old one is renamed aside, then removed."""
    old = None
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _swap_files(new: Path, final: Path) -> None:
    """Move every export file of ``new`` into ``final``; drop the export files ``final`` had and ``new`` lacks."""
    final.mkdir(parents=True, exist_ok=True)
    names = {p.name for p in new.iterdir() if p.is_file()}
    for name in sorted(names):
        os.replace(new / name, final / name)
    for name in EXPORT_FILES:
        if name not in names:
            (final / name).unlink(missing_ok=True)


def swap_in(staging: Path, final: Path, subfolders: tuple[str, ...]) -> None:
    """Move a finished export from ``staging`` to ``final``: ``subfolders`` (nested exports) as whole folders,
    the files at the top level one by one; then remove ``staging``."""
    for name in subfolders:
        if (staging / name).is_dir():
            _swap_dir(staging / name, final / name)
    _swap_files(staging, final)
    shutil.rmtree(staging, ignore_errors=True)
