"""What produced a tracker's results: stored beside them so a re-run never reuses another tracker's boxes.

A tracker's results folder holds ``identity.json``: kind, edgetrack's version, model file hash, the backend
actually used, device, threads, the spec and the long-term mode (edgetrack), or the OpenCV version and model hash
(peers). The version is there because the runtime's own code (crops, decoding, states) makes the boxes too. A later run
under the same label resumes only when the identity is the same; otherwise it stops with a :class:`DataError`
naming what differs (nothing is overwritten).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..data.fileio import atomic_write_text
from ..errors import DataError

IDENTITY_NAME = "identity.json"


def files_hash(paths: list[Path]) -> str:
    """sha256 over the names and bytes of ``paths`` (sorted); empty string when there are none."""
    if not paths:
        return ""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _edgetrack_identity(factory) -> dict[str, Any]:
    from ..runtime.backends.base import resolve_backend_name
    from ..runtime.model_files import locate

    files = locate(None if factory.model in (None, "default") else factory.model)
    root = Path(files.root)
    graphs = [root] if root.is_file() else [p for p in root.iterdir() if p.is_file() and p.name != "export.json"]
    from .. import __version__

    return {"edgetrack": __version__, "model_sha256": files_hash(graphs),
            "backend": resolve_backend_name(files, factory.backend),
            "device": factory.device, "threads": factory.threads, "spec": files.spec.to_dict(),
            "long_term": factory.long_term}


def tracker_identity(factory) -> dict[str, Any]:
    """The identity of what ``factory`` builds (see the module docstring)."""
    ident: dict[str, Any] = {"kind": factory.kind}
    if factory.kind == "edgetrack":
        ident.update(_edgetrack_identity(factory))
    elif factory.kind == "import":
        ident.update(target=str(factory.model))  # the caller's own class: its keyword arguments are its business
    elif factory.kind != "identity":
        import cv2

        ident.update(opencv=cv2.__version__, model_sha256=files_hash(factory.model_files()))
    return ident


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {str(old.get(k))[:60]} -> {str(new.get(k))[:60]}" for k in keys if old.get(k) != new.get(k)]


def check_identity(out_dir: str | Path, label: str, ident: dict[str, Any]) -> None:
    """Record ``ident`` for ``label``'s results, or refuse when the results there came from another tracker."""
    folder = Path(out_dir) / label
    path = folder / IDENTITY_NAME
    has_results = folder.is_dir() and any(folder.glob("*.txt"))
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError as exc:
            raise DataError(f"{path} is unreadable ({exc}); move {folder} away to re-run") from exc
        if old != ident:
            raise DataError(f"results of '{label}' in {folder} were made by a different tracker ("
                            f"{'; '.join(_differences(old, ident))}); use another --out, or move {folder} away "
                            "to re-run it")
        return
    if has_results:
        raise DataError(f"results of '{label}' in {folder} do not say which tracker made them (no {IDENTITY_NAME}); "
                        f"use another --out, or move {folder} away to re-run it")
    atomic_write_text(path, json.dumps(ident, indent=1, sort_keys=True) + "\n")
