"""Training configuration: nested frozen dataclasses, read from YAML with ``key.sub=value`` overrides."""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the field's declared type (tuples from lists, numbers from strings)."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise InputError(f"config key '{key}' must be a mapping")
        return from_dict(annotation, value, prefix=f"{key}.")
    if origin is tuple:
        items = value if isinstance(value, (list, tuple)) else [v for v in str(value).split(",") if v]
        inner = typing.get_args(annotation)[0] if typing.get_args(annotation) else str
        return tuple(_coerce(v, inner, key) for v in items)
    if origin is typing.Union or str(origin) == "types.UnionType":
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return None if value is None or value == "none" else _coerce(value, args[0], key)
    try:
        if annotation is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if annotation in (int, float, str):
            return annotation(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"config key '{key}': cannot read {value!r} as {annotation.__name__}") from exc
    return value


def from_dict(cls: type, data: dict[str, Any], prefix: str = ""):
    """Build dataclass ``cls`` from a (nested) dict; unknown keys are errors that name the known ones."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"unknown config keys {[prefix + k for k in unknown]}; known: {sorted(names)}")
    defaults = {f.name: f.default_factory() for f in dataclasses.fields(cls)
                if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(hints[f.name])}
    kwargs = {k: _coerce(_merged(defaults[k], v) if k in defaults else v, hints[k], prefix + k)
              for k, v in data.items()}
    return cls(**kwargs)


def _merged(default, value: Any) -> Any:
    """A partial mapping for a nested dataclass field completes that field's own default (not the class's)."""
    if not isinstance(value, dict):
        return value
    base = {f.name: getattr(default, f.name) for f in dataclasses.fields(default)}
    for k, v in value.items():
        base[k] = _merged(base[k], v) if k in base and dataclasses.is_dataclass(base[k]) else v
    return base


def to_dict(obj) -> dict[str, Any]:
    out = dataclasses.asdict(obj)

    def fix(v):
        if isinstance(v, tuple):
            return [fix(x) for x in v]
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        return v

    return fix(out)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["steps=100", "kd.temp=2"]`` applied onto a nested dict (values parsed as YAML scalars)."""
    data = dict(data)
    for item in overrides:
        if "=" not in item:
            raise InputError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else ""
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node[parts[-1]] = value
    return data


def load_config(cls: type, path: str | Path | None, overrides: list[str] | None = None,
                base: dict[str, Any] | None = None):
    """Defaults <- ``base`` <- YAML file <- overrides, validated into ``cls``."""
    data: dict[str, Any] = dict(base or {})
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise InputError(f"config {path} must be a YAML mapping")
        data.update(loaded)
    return from_dict(cls, apply_overrides(data, overrides or []))
