"""Finding a model's files and its spec without importing any inference library.

A model is either an edgetrack checkpoint (``.safetensors`` with the spec in its metadata) or an exported folder
holding one or more pairs of graphs:

- ``onnx``: ``template.onnx`` + ``search.onnx``, the spec in the ONNX ``metadata_props``;
- ``openvino``: ``template.xml/.bin`` + ``search.xml/.bin``, the spec in the IR's model ``rt_info``;
- ``tensorrt``: ``template.engine`` + ``search.engine``, the spec in a ``spec.json`` sidecar together with the
  build info (TensorRT version, GPU, compute capability, precision), since an engine has no metadata slot.

Every graph in a folder must carry the same spec. ``None`` or ``"default"`` means the model bundled with edgetrack;
other bundled models go by name (``"fast"``, ``"accurate"``: see ``registry``), after any existing path of that name.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from ..checkpoint import SUFFIX, read_spec
from ..errors import ModelError, ModelNotFoundError, SpecError, UngatedModelWarning
from ..spec import METADATA_KEY, TrackerSpec
from .registry import ASSETS_DIR, DEFAULT_NAME, bundled_dir, is_model_name, resolve_name

DEFAULT_DIR = bundled_dir(DEFAULT_NAME)
SPEC_SIDECAR = "spec.json"
GATE_REPORT = "export.json"  # written by edgetrack-export's accuracy gate
_GRAPH_FILES = {
    "onnx": ("template.onnx", "search.onnx"),
    "openvino": ("template.xml", "search.xml"),
    "tensorrt": ("template.engine", "search.engine"),
}
_GRAPH_SUFFIXES = (".onnx", ".xml", ".engine")


@dataclass(frozen=True)
class ModelFiles:
    root: Path
    formats: tuple[str, ...]
    spec: TrackerSpec
    name: str = ""  # the bundled model's name when it was asked for by name

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


def _openvino_spec(path: Path) -> TrackerSpec:
    """Read the spec from an OpenVINO IR's rt_info with xml.etree (no openvino import)."""
    from ._ov_meta import read_rt_info

    text = read_rt_info(path, METADATA_KEY)
    if text is None:  # an IR converted from an edgetrack ONNX keeps the ONNX metadata under "framework"
        text = read_rt_info(path, f"framework.{METADATA_KEY}")
    if text is None:
        raise ModelError(f"{path} carries no edgetrack spec in its rt_info ('{METADATA_KEY}'); "
                         "export it with edgetrack-export --format openvino")
    try:
        return TrackerSpec.from_json(text)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from exc


def _regular(path: Path) -> bool:
    """Whether a model file exists; ModelError when something else than a regular file has its name (reading a
    FIFO would block forever, a device never ends)."""
    if not path.exists():
        return False
    if not path.is_file():
        raise ModelError(f"{path} is not a regular file (a folder, FIFO, socket or device): edgetrack reads model "
                         "files only from regular files")
    return True


def _read_sidecar(root: Path) -> dict:
    path = root / SPEC_SIDECAR
    if not _regular(path):
        raise ModelError(f"{root} has no {SPEC_SIDECAR} next to its graphs")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def _sidecar_spec(root: Path) -> TrackerSpec:
    """``spec.json`` is either the spec itself or ``{"spec": {...}, "build": {...}}`` (TensorRT engines)."""
    data = _read_sidecar(root)
    try:
        return TrackerSpec.from_dict(data["spec"] if isinstance(data.get("spec"), dict) else data)
    except SpecError as exc:
        raise SpecError(f"{root / SPEC_SIDECAR}: {exc}") from exc


def read_build_info(root: str | os.PathLike) -> dict:
    """The ``build`` block of an engine folder's ``spec.json`` (empty when the sidecar has none)."""
    build = _read_sidecar(Path(root)).get("build", {})
    if not isinstance(build, dict):
        raise SpecError(f"{Path(root) / SPEC_SIDECAR}: 'build' must be a JSON object")
    return build


def _folder_formats(root: Path) -> tuple[str, ...]:
    found = []
    for fmt, (tmpl, search) in _GRAPH_FILES.items():
        has_t, has_s = _regular(root / tmpl), _regular(root / search)
        if has_t != has_s:
            raise ModelError(f"{root} has {tmpl if has_t else search} but not its partner graph")
        if has_t:
            found.append(fmt)
    if "openvino" in found:
        for xml in _GRAPH_FILES["openvino"]:
            if not _regular((root / xml).with_suffix(".bin")):
                raise ModelError(f"{root} has {xml} but not its weights {Path(xml).stem}.bin")
    return tuple(found)


def _format_specs(root: Path, fmt: str) -> dict[str, TrackerSpec]:
    """The spec each file of one format carries, by file name."""
    tmpl, search = _GRAPH_FILES[fmt]
    if fmt == "onnx":
        return {tmpl: _onnx_spec(root / tmpl), search: _onnx_spec(root / search)}
    if fmt == "openvino":
        return {tmpl: _openvino_spec(root / tmpl), search: _openvino_spec(root / search)}
    return {SPEC_SIDECAR: _sidecar_spec(root)}


def _folder_spec(root: Path, formats: tuple[str, ...]) -> TrackerSpec:
    """The one spec every graph in the folder carries; SpecError naming the files when they disagree."""
    found: dict[str, TrackerSpec] = {}
    for fmt in formats:
        specs = _format_specs(root, fmt)
        first, *rest = specs
        if any(specs[name] != specs[first] for name in rest):
            raise SpecError(f"{root}: {' and '.join(specs)} carry different specs")
        found.update(specs)
    names = list(found)
    spec = found[names[0]]
    differ = [name for name in names[1:] if found[name] != spec]
    if differ:
        raise SpecError(f"{root}: {', '.join(differ)} carry a different spec from {names[0]}; the folder mixes "
                        "exports of different models: export them again into one folder")
    return spec


def locate(model: str | os.PathLike | None) -> ModelFiles:
    """Resolve a model argument to its files and spec; every failure is a ModelError saying what to do.

    Order: ``None``/``"default"`` -> the bundled default; an existing path; a bundled model name.
    """
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise ModelError(f"model must be a path, a bundled model name or None, got {type(model).__name__} "
                         f"{model!r}")
    if model is not None and not str(model).strip():
        raise ModelNotFoundError("model is an empty string: give a checkpoint, an exported folder, a bundled model "
                                 "name, or None for the bundled default")
    if model is None or str(model) == DEFAULT_NAME:
        root = default_model_dir()
        if not (root.is_dir() and _folder_formats(root)):
            raise ModelNotFoundError(
                "no default model is bundled with this edgetrack build. Import a teacher and use it: "
                "edgetrack import nanotrack nanotrackv2.pth --out nanotrack_v2.safetensors, then "
                "Tracker('nanotrack_v2.safetensors') or export it with edgetrack-export.")
        return replace(_locate_path(root), name=DEFAULT_NAME)
    try:
        path = Path(model).expanduser()
        exists = path.exists()
    except (OSError, TypeError, ValueError) as exc:  # a name too long for the file system, a bytes PathLike
        raise ModelNotFoundError(f"model not found: {model!r} ({exc})") from exc
    if not exists:
        if is_model_name(str(model)):
            return replace(_locate_path(resolve_name(str(model))), name=str(model))
        raise ModelNotFoundError(f"model not found: {path}")
    return _locate_path(path)


def _locate_path(path: Path) -> ModelFiles:
    if not path.is_dir():
        _regular(path)
    if path.is_file() and path.suffix in _GRAPH_SUFFIXES:
        if path.name not in {name for pair in _GRAPH_FILES.values() for name in pair}:
            raise ModelError(f"{path}: one graph file is not a model; edgetrack loads an exported folder holding "
                             f"template{path.suffix} and search{path.suffix} (as edgetrack-export writes it) or "
                             f"an edgetrack checkpoint ({SUFFIX})")
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
    return ModelFiles(path, formats, _folder_spec(path, formats))


def gate_status(root: str | os.PathLike) -> tuple[str, str]:
    """(status, why) of an exported folder's accuracy gate: ``"ok"``, ``"failed"`` or ``"missing"``."""
    path = Path(root) / GATE_REPORT
    if not path.is_file():
        return "missing", f"{root} has no {GATE_REPORT}: it did not come out of edgetrack-export's accuracy gate"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return "failed", f"{path} cannot be read ({exc})"
    status = data.get("status") if isinstance(data, dict) else None
    if status == "ok":
        return "ok", ""
    rows = data.get("rows", []) if isinstance(data, dict) else []
    why = "; ".join(str(r.get("message")) for r in rows if isinstance(r, dict) and r.get("message"))
    return "failed", f"{path} says the accuracy gate {status or 'did not pass'}{': ' + why if why else ''}"


def check_gate(files: ModelFiles, allow_ungated: bool = False) -> None:
    """An exported folder loads only when its accuracy gate passed, unless ``allow_ungated`` (then it warns).

    Checkpoints (no export) and the models bundled with edgetrack are not gated.
    """
    if files.formats == ("checkpoint",) or files.name or ASSETS_DIR in Path(files.root).resolve().parents:
        return
    status, why = gate_status(files.root)
    if status == "ok":
        return
    if not allow_ungated:
        raise ModelError(f"{why}. Export it with edgetrack-export (which checks accuracy), or load it anyway "
                         "with Tracker(..., allow_ungated=True) (command line: --allow-ungated)")
    warnings.warn(f"{why}; loading it anyway (allow_ungated=True)", UngatedModelWarning,
                  stacklevel=_outside_edgetrack())


def _outside_edgetrack() -> int:
    """``stacklevel`` of the first caller outside the edgetrack package (the user's line that loaded the model,
    whichever public object it went through)."""
    import sys

    package = str(Path(__file__).resolve().parents[1])
    frame, level = sys._getframe(1), 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        frame, level = frame.f_back, level + 1
    return level
