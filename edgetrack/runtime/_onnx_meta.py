"""Read an ONNX file's ``metadata_props`` with a minimal protobuf scan (no onnx/onnxruntime import).

``ModelProto.metadata_props`` is field 14, a repeated ``StringStringEntryProto`` (key = field 1, value = 2).
Only the top level of the message is walked; the graph is skipped by its length.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ModelError

_METADATA_FIELD = 14


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """Yield (field number, wire type, value) at one message level; value is bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("truncated field")
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, wire, value


def read_metadata_props(path: Path) -> dict[str, str]:
    try:
        buf = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    props: dict[str, str] = {}
    try:
        for field, wire, value in _fields(buf):
            if field == _METADATA_FIELD and wire == 2:
                entry = {f: v for f, w, v in _fields(value) if w == 2}
                props[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not a valid ONNX file ({exc})") from exc
    return props
