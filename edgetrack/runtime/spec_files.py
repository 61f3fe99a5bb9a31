"""Writing a new spec into a model's files, graphs untouched (standard library + numpy; no onnx/openvino import).

Used to store a fitted calibration: ``edgetrack calibrate`` and the export pipeline's re-calibration. Every file
that carries the spec gets the new one: a checkpoint's safetensors metadata, the ONNX graphs' ``metadata_props``,
an OpenVINO IR's ``rt_info``, a TensorRT folder's ``spec.json``. Each file is replaced atomically.
"""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from ..checkpoint import SUFFIX, _read_header, load_arrays, save_arrays
from ..data.fileio import atomic_path, atomic_write_bytes, atomic_write_text
from ..errors import ModelError
from ..spec import METADATA_KEY, TrackerSpec
from ._onnx_meta import _varint
from .model_files import SPEC_SIDECAR, locate

_METADATA_TAG = (14 << 3) | 2  # ModelProto.metadata_props, length-delimited


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return _encode_varint(tag) + _encode_varint(len(payload)) + payload


def _top_level_spans(buf: bytes):
    """(tag, start, end) of every top-level field of a protobuf message."""
    pos = 0
    while pos < len(buf):
        start = pos
        tag, pos = _varint(buf, pos)
        wire = tag & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            pos += size
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated field")
        yield tag, start, pos


def set_onnx_metadata(path: Path, key: str, value: str) -> None:
    """Replace (or add) one ``metadata_props`` entry of an ONNX file."""
    buf = Path(path).read_bytes()
    entry_key = _field((1 << 3) | 2, key.encode())
    kept = bytearray()
    try:
        for tag, start, end in _top_level_spans(buf):
            if tag == _METADATA_TAG and entry_key in buf[start:end]:
                continue  # the old entry of this key
            kept += buf[start:end]
    except ValueError as exc:
        raise ModelError(f"{path} is not a valid ONNX file ({exc})") from exc
    kept += _field(_METADATA_TAG, entry_key + _field((2 << 3) | 2, value.encode()))
    atomic_write_bytes(path, bytes(kept))


def set_openvino_rt_info(path: Path, key: str, value: str) -> None:
    """Replace the model-level ``rt_info`` string ``key`` of an IR ``.xml`` (where the spec was, or at the top)."""
    tree = ET.parse(path)
    rt = tree.getroot().find("rt_info")
    if rt is None:
        rt = ET.SubElement(tree.getroot(), "rt_info")
    node = rt.find(key)
    if node is None and rt.find("framework") is not None:
        node = rt.find("framework").find(key)
    if node is None:
        node = ET.SubElement(rt, key)
    node.set("value", value)
    with atomic_path(path) as tmp:
        tree.write(tmp, encoding="utf-8", xml_declaration=True)


def _write_checkpoint(path: Path, spec: TrackerSpec) -> None:
    meta = dict(_read_header(path).get("__metadata__") or {})
    meta.pop(METADATA_KEY, None)
    _, arrays = load_arrays(path)
    save_arrays(path, spec, arrays, extra_meta=meta)


def write_calibration(model: str | os.PathLike, calibration: dict) -> list[Path]:
    """Store ``calibration`` in the spec of every file of ``model`` (a checkpoint, an exported folder, a bundled
    name) that carries one, nothing else changed; returns the files written."""
    return write_spec(model, calibration=dict(calibration))


def write_spec(model: str | os.PathLike, **changes) -> list[Path]:
    """Change tracking constants (``changes``, validated as a spec) in every file of ``model`` that carries its
    spec, graphs untouched; returns the files written. The network's shapes must not change this way."""
    files = locate(model)
    spec = files.spec.with_(**changes)
    root, text, written = Path(files.root), spec.to_json(), []
    if files.formats == ("checkpoint",):
        _write_checkpoint(root, spec)
        return [root]
    for fmt in files.formats:
        if fmt == "onnx":
            for name in ("template", "search"):
                set_onnx_metadata(files.graph("onnx", name), METADATA_KEY, text)
                written.append(files.graph("onnx", name))
        elif fmt == "openvino":
            for name in ("template", "search"):
                set_openvino_rt_info(files.graph("openvino", name), METADATA_KEY, text)
                written.append(files.graph("openvino", name))
        elif fmt == "tensorrt":
            sidecar = root / SPEC_SIDECAR
            data = json.loads(sidecar.read_text())
            data = {**data, "spec": spec.to_dict()} if isinstance(data.get("spec"), dict) else spec.to_dict()
            atomic_write_text(sidecar, json.dumps(data, indent=1) + "\n")
            written.append(sidecar)
    for ckpt in sorted(root.glob(f"*{SUFFIX}")):  # a bundled model's checkpoint beside its graphs
        _write_checkpoint(ckpt, spec)
        written.append(ckpt)
    return written
