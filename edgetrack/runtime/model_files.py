"""Finding a model's files and its spec without importing any inference library.

A model is either an edgetrack checkpoint (``.safetensors`` with the spec in its metadata) or an exported folder
holding ``template.onnx`` + ``search.onnx`` (spec in the ONNX metadata). Formats without a metadata slot keep the
spec in a ``spec.json`` sidecar. ``None`` or ``"default"`` means the model bundled with edgetrack.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import SUFFIX, read_spec
from ..errors import ModelError, ModelNotFoundError, SpecError
from ..spec import METADATA_KEY, TrackerSpec

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "assets" / "default"
SPEC_SIDECAR = "spec.json"
_GRAPH_FILES = {
    "onnx": ("template.onnx", "search.onnx"),
}


@dataclass(frozen=True)
class ModelFiles:
    root: Path
    formats: tuple[str, ...]
    spec: TrackerSpec

    def graph(self, fmt: str, which: str) -> Path:
        return self.root / _GRAPH_FILES[fmt][0 if which == "template" else 1]


def default_model_dir() -> Path:
    return DEFAULT_DIR


def _onnx_spec(path: Path) -> TrackerSpec:
    """Read the spec from an ONNX file's metadata_props without onnx or onnxruntime (protobuf scan)."""
    from ._onnx_meta import read_metadata_props

    props = read_metadata_props(path)
    if METADATA_KEY not in props:
        raise ModelError(f"{path} carries no edgetrack spec in its metadata; export it with edgetrack-export")
    try:
        return TrackerSpec.from_json(props[METADATA_KEY])
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from exc


def _sidecar_spec(root: Path) -> TrackerSpec:
    path = root / SPEC_SIDECAR
    if not path.exists():
        raise ModelError(f"{root} has no {SPEC_SIDECAR} next to its graphs")
    try:
        return TrackerSpec.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path} is not valid JSON: {exc}") from exc


def _folder_formats(root: Path) -> tuple[str, ...]:
    found = []
    for fmt, (tmpl, search) in _GRAPH_FILES.items():
        has_t, has_s = (root / tmpl).exists(), (root / search).exists()
        if has_t != has_s:
            raise ModelError(f"{root} has {tmpl if has_t else search} but not its partner graph")
        if has_t:
            found.append(fmt)
    return tuple(found)


def locate(model: str | os.PathLike | None) -> ModelFiles:
    """Resolve a model argument to its files and spec; every failure is a ModelError saying what to do."""
    if model is None or str(model) == "default":
        root = default_model_dir()
        if not (root.is_dir() and _folder_formats(root)):
            raise ModelNotFoundError(
                "no default model is bundled with this edgetrack build. Import a teacher and use it: "
                "edgetrack import nanotrack nanotrackv2.pth --out nanotrack_v2.safetensors, then "
                "Tracker('nanotrack_v2.safetensors') or export it with edgetrack-export.")
        return locate(root)
    path = Path(model).expanduser()
    if not path.exists():
        raise ModelNotFoundError(f"model not found: {path}")
    if path.is_file() and path.suffix == ".onnx":
        path = path.parent
    if path.is_file():
        if path.suffix != SUFFIX:
            raise ModelError(f"{path}: expected an edgetrack checkpoint ({SUFFIX}) or an exported folder")
        return ModelFiles(path, ("checkpoint",), read_spec(path))
    formats = _folder_formats(path)
    if not formats:
        ckpts = sorted(path.glob(f"*{SUFFIX}"))
        if len(ckpts) == 1:
            return ModelFiles(ckpts[0], ("checkpoint",), read_spec(ckpts[0]))
        raise ModelError(f"{path} holds no model: expected template/search graphs or one {SUFFIX} checkpoint")
    spec = _onnx_spec(path / "template.onnx") if "onnx" in formats else _sidecar_spec(path)
    if "onnx" in formats:
        other = _onnx_spec(path / "search.onnx")
        if other != spec:
            raise SpecError(f"{path}: template.onnx and search.onnx carry different specs")
    return ModelFiles(path, formats, spec)
