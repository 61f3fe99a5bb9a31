"""Read an OpenVINO IR's model-level ``rt_info`` with the standard library (no openvino import).

``Model.set_rt_info(value, "key")`` followed by ``openvino.save_model`` writes, at the end of the ``.xml``::

    <net name="..." version="11">
        <layers>...</layers>
        <edges>...</edges>
        <rt_info>
            <info name="OpenVINO Runtime" value="2026.4.1-..." />
            <key value="...the string, XML-escaped..." />
        </rt_info>
    </net>

Nested keys (``set_rt_info(v, ["a", "b"])``) become nested elements ``<a><b value="..."/></a>``.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..errors import ModelError


def _root(path: Path) -> ET.Element:
    try:
        root = ET.parse(path).getroot()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    except ET.ParseError as exc:
        raise ModelError(f"{path} is not a valid OpenVINO IR (.xml does not parse: {exc})") from exc
    if root.tag != "net":
        raise ModelError(f"{path} is not an OpenVINO IR: its root element is <{root.tag}>, expected <net>")
    return root


def read_rt_info(path: str | Path, key: str) -> str | None:
    """The string stored under the model-level rt_info ``key`` (a dotted path for nested keys), or None."""
    node = _root(Path(path)).find("rt_info")
    for part in key.split("."):
        if node is None:
            return None
        node = node.find(part)
    return None if node is None else node.get("value")


def weight_precisions(path: str | Path) -> set[str]:
    """Element types of the IR's constants (``f32``, ``f16``, ``i8``, ...): how the weights are stored."""
    root = _root(Path(path))
    types = set()
    for layer in root.iter("layer"):
        if layer.get("type") == "Const":
            data = layer.find("data")
            if data is not None and data.get("element_type"):
                types.add(data.get("element_type"))
    return types
