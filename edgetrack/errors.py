"""One exception hierarchy for everything edgetrack raises on bad input or bad files."""
from __future__ import annotations


class EdgeTrackError(Exception):
    """Base class of every error edgetrack raises on purpose."""


class InputError(EdgeTrackError, ValueError):
    """A frame, box or argument that cannot be used (wrong shape, dtype, empty, out of range)."""


class FrameError(InputError):
    """A frame that is not an HxWx3 uint8 image."""


class BoxError(InputError):
    """A box that is zero-sized, negative, non-finite or entirely outside the image."""


class StateError(EdgeTrackError, RuntimeError):
    """An operation called in the wrong order, e.g. ``update`` before ``init``."""


class ModelError(EdgeTrackError):
    """A model file that is missing, corrupt, or whose spec does not fit its weights."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model path that does not exist."""


class SpecError(ModelError, ValueError):
    """A tracker spec that is malformed or inconsistent."""


class BackendUnavailableError(EdgeTrackError, ImportError):
    """A backend whose vendor library is not installed; the message names the extra to install."""


class DataError(EdgeTrackError, ValueError):
    """A dataset folder or ground-truth file that cannot be read as promised."""


class UngatedModelWarning(UserWarning):
    """An exported folder loaded without a passed accuracy gate (``allow_ungated=True``)."""


def missing_extra(package: str, extra: str, what: str) -> BackendUnavailableError:
    """Build the error raised when an optional vendor library is absent."""
    return BackendUnavailableError(
        f"{what} needs the '{package}' package, which is not installed. "
        f"Install it with: pip install 'edgetrack[{extra}]'"
    )
