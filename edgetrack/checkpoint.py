"""edgetrack checkpoints: one ``.safetensors`` file holding the weights and, in its metadata, the JSON spec.

No pickled classes. Reading the spec needs only numpy (the runtime uses it to pick backends); loading the
weights into a network needs torch and lives in :mod:`edgetrack.models.io`.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from .data.fileio import atomic_path
from .errors import InputError, ModelError, ModelNotFoundError, SpecError
from .spec import METADATA_KEY, TrackerSpec

SUFFIX = ".safetensors"
_MAX_HEADER = 64 * 1024 * 1024


def _read_header(path: Path) -> dict:
    """Parse a safetensors header without loading tensors; raises ModelError on anything malformed."""
    if not path.exists():
        raise ModelNotFoundError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}")
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise ModelError(f"{path} is not an edgetrack checkpoint (file too short)")
        (size,) = struct.unpack("<Q", raw)
        if size <= 0 or size > _MAX_HEADER or size > path.stat().st_size - 8:
            raise ModelError(f"{path} is not an edgetrack checkpoint (bad safetensors header)")
        try:
            return json.loads(fh.read(size))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path} is corrupt: safetensors header is not JSON ({exc})") from exc


def read_spec(path: str | os.PathLike) -> TrackerSpec:
    """The spec stored in a checkpoint's metadata."""
    path = Path(path)
    header = _read_header(path)
    meta = header.get("__metadata__") or {}
    if METADATA_KEY not in meta:
        raise ModelError(f"{path} has no edgetrack spec in its metadata; was it written by edgetrack?")
    try:
        return TrackerSpec.from_json(meta[METADATA_KEY])
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from exc


def load_arrays(path: str | os.PathLike) -> tuple[TrackerSpec, dict[str, np.ndarray]]:
    """Spec and weights as numpy arrays (no torch)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    spec = read_spec(path)
    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path} is corrupt: {exc}") from exc
    return spec, arrays


def save_arrays(path: str | os.PathLike, spec: TrackerSpec, arrays: dict[str, np.ndarray],
                extra_meta: dict[str, str] | None = None) -> Path:
    """Write weights + spec atomically (temp file in the same folder, then rename) to ``path``, which must end in
    ``.safetensors`` (what tells a checkpoint from an exported folder when it is loaded): InputError otherwise."""
    from safetensors.numpy import save_file

    path = Path(path)
    if path.suffix != SUFFIX:
        raise InputError(f"an edgetrack checkpoint is a {SUFFIX} file: name it {path.with_suffix(SUFFIX).name}, "
                         f"not {path.name}")
    meta = {METADATA_KEY: spec.to_json(), "format": "edgetrack-checkpoint"}
    meta.update(extra_meta or {})
    with atomic_path(path) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp), metadata=meta)
    return path
