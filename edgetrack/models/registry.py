"""Family name -> network class; ``build_model(spec)`` is the one way networks are made."""
from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from ..errors import SpecError
from ..spec import TrackerSpec

_FAMILY_MODULES = {
    "nanotrack": ("edgetrack.models.nanotrack", "NanoTrackNet"),
    "siamrpn": ("edgetrack.models.siamrpn", "SiamRPNNet"),
    "siamfc": ("edgetrack.models.siamfc", "SiamFCNet"),
    "vit": ("edgetrack.models.vit", "ViTTrackNet"),
}
_EXTRA: dict[str, Callable] = {}


def register_family(name: str, factory: Callable) -> None:
    """Register a network factory ``factory(spec) -> SiameseNet`` for a new family name."""
    _EXTRA[name] = factory


def build_model(spec: TrackerSpec):
    """Build the (randomly initialised) network a spec describes."""
    if spec.family in _EXTRA:
        return _EXTRA[spec.family](spec)
    if spec.family not in _FAMILY_MODULES:
        raise SpecError(f"no network registered for family {spec.family!r}")
    module_name, class_name = _FAMILY_MODULES[spec.family]
    cls = getattr(import_module(module_name), class_name)
    try:
        return cls(spec)
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"spec arch does not describe a valid {spec.family} network: {exc}") from exc
