"""Models bundled with edgetrack, by name: every folder ``edgetrack/assets/<name>/`` is one.

``"default"`` is the bundled default student (the searched ``accurate`` student; ``"accurate"`` is an alias of
it); ``"fast"`` names the folder ``assets/fast/``, the smaller student that was the default before.
``list_models()`` gives each name with the one-line description
from its ``provenance.json`` (key ``"description"``, else ``"note"``). No inference library is imported here.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelNotFoundError

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_NAME = "default"
ALIASES = {"accurate": DEFAULT_NAME}
_MODEL_MARKERS = ("template.onnx", "template.xml", "template.engine", "model.safetensors")


def bundled_dir(name: str) -> Path:
    """The folder of bundled model ``name`` (an alias resolves to its target); it may not exist."""
    return ASSETS_DIR / ALIASES.get(name, name)


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and any((path / marker).exists() for marker in _MODEL_MARKERS)


def bundled_names() -> tuple[str, ...]:
    """Names of the bundled model folders, ``default`` first, then alphabetical."""
    if not ASSETS_DIR.is_dir():
        return ()
    names = sorted(p.name for p in ASSETS_DIR.iterdir() if not p.name.startswith((".", "_")) and _is_model_dir(p))
    return tuple(sorted(names, key=lambda n: n != DEFAULT_NAME))


def is_model_name(text: str) -> bool:
    """Whether ``text`` reads as a bare model name (no path separator, no file suffix)."""
    return bool(text) and "/" not in text and "\\" not in text and "." not in text


def describe(name: str) -> str:
    """One line from the folder's ``provenance.json`` (``description``, else ``note``; empty when neither)."""
    path = bundled_dir(name) / "provenance.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    if not isinstance(data, dict):
        return ""
    text = data.get("description") or data.get("note") or ""
    return " ".join(str(text).split())


def list_models() -> dict[str, str]:
    """``{name: one-line description}`` for every bundled model; any name here works as ``Tracker(name)``.

    Aliases (``accurate`` -> ``default``) are not listed separately; see ``ALIASES``.
    """
    return {name: describe(name) for name in bundled_names()}


def available_text() -> str:
    names = bundled_names()
    if not names:
        return "this edgetrack build bundles no model"
    aliases = {target: [a for a, t in ALIASES.items() if t == target] for target in names}
    shown = [f"{n} (alias: {', '.join(aliases[n])})" if aliases[n] else n for n in names]
    return "bundled models: " + ", ".join(shown)


def resolve_name(name: str) -> Path:
    """The folder of bundled model ``name``; ModelNotFoundError listing the available names otherwise."""
    root = bundled_dir(name)
    if not _is_model_dir(root):
        raise ModelNotFoundError(
            f"no bundled model named {name!r} and no file or folder of that name; {available_text()} "
            "(edgetrack models lists them). Pass a checkpoint or exported folder path instead, or import a "
            "teacher: edgetrack import nanotrack nanotrackv2.pth --out nanotrack_v2.safetensors")
    return root
