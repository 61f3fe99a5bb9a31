"""Trackers under evaluation: picklable factories, OpenCV peers and reading whatever ``update`` returns.

A tracker is any object with ``init(frame, box)`` and ``update(frame)`` (frame: BGR uint8 HxWx3, box:
``x,y,w,h``). ``update`` may return an object with ``.box`` (and optionally ``.score``), a dict with
``"bbox"`` (pysot style), 4 numbers, or OpenCV's ``(ok, box)``. When OpenCV reports ``ok=False`` the
previous box is kept, so a lost target is scored on where the tracker last had it.
"""
from __future__ import annotations

import importlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetrack.errors import InputError, ModelError, ModelNotFoundError

PEERS: tuple[str, ...] = ("kcf", "csrt", "mil", "nano", "vit")
KINDS: tuple[str, ...] = ("edgetrack", "identity", "import") + PEERS
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def shared_dir() -> Path:
    """The repository's shared data folder, for the benchmark scripts only (no library code calls it):
    ``$EDGETRACK_SHARED``, else ``<checkout>/../shared``."""
    env = os.environ.get("EDGETRACK_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".." / "shared"


def default_peer_model(kind: str) -> Path | None:
    """Where the OpenCV DNN peers' ONNX files are found when no model is given: under ``$EDGETRACK_SHARED``
    when that is set (the library never guesses a developer folder); None otherwise."""
    env = os.environ.get("EDGETRACK_SHARED")
    if not env:
        return None
    if kind == "nano":
        return Path(env) / "weights" / "nanotrack" / "nanotrackv2"
    if kind == "vit":
        return Path(env) / "weights" / "vittrack" / "object_tracking_vittrack_2023sep.onnx"
    return None


@dataclass(frozen=True)
class Prediction:
    """One frame's output: box ``x,y,w,h``, a confidence (NaN when the tracker gives none), OpenCV's ok."""

    box: tuple[float, float, float, float]
    score: float = math.nan
    ok: bool = True


def _four(values: Any) -> tuple[float, float, float, float]:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size != 4:
        raise TypeError(f"expected a box of 4 numbers, got {arr.size}")
    return (float(arr[0]), float(arr[1]), float(arr[2]), float(arr[3]))


def read_prediction(out: Any, previous: tuple[float, float, float, float]) -> Prediction:
    """Normalise the value an ``update`` call returned (see the module docstring)."""
    if isinstance(out, Prediction):
        return out
    if hasattr(out, "box"):
        score = getattr(out, "score", math.nan)
        return Prediction(_four(out.box), math.nan if score is None else float(score))
    if isinstance(out, dict) and "bbox" in out:
        return Prediction(_four(out["bbox"]), float(out.get("best_score", math.nan)))
    if isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[0], (bool, np.bool_)):
        ok, box = out
        return Prediction(_four(box) if ok else previous, math.nan, bool(ok))
    try:
        return Prediction(_four(out))
    except (TypeError, ValueError):
        raise TypeError(
            f"update() returned {type(out).__name__}; expected an object with .box, 4 numbers or (ok, box)"
        ) from None


class OpenCVTracker:
    """Adapter around a ``cv2.Tracker``: integer boxes in, :class:`Prediction` out."""

    def __init__(self, impl: Any) -> None:
        self._impl = impl
        self._last: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def init(self, frame: np.ndarray, box) -> None:
        x, y, w, h = _four(box)
        rect = (int(round(x)), int(round(y)), max(1, int(round(w))), max(1, int(round(h))))
        self._impl.init(frame, rect)
        self._last = tuple(float(v) for v in rect)  # type: ignore[assignment]

    def update(self, frame: np.ndarray) -> Prediction:
        ok, rect = self._impl.update(frame)
        if ok:
            self._last = _four(rect)
        score = self._impl.getTrackingScore() if hasattr(self._impl, "getTrackingScore") else math.nan
        return Prediction(self._last, float(score), bool(ok))


class IdentityTracker:
    """Baseline that never moves: reports the first box on every frame."""

    def init(self, frame: np.ndarray, box) -> None:
        self._box = _four(box)

    def update(self, frame: np.ndarray) -> Prediction:
        return Prediction(self._box, 1.0)


def _nano_files(model: Path) -> tuple[Path, Path]:
    if model.is_file():
        raise ModelError(f"cv2.TrackerNano needs a folder with a *backbone*.onnx and a *head*.onnx, got {model}")
    backbone = sorted(model.glob("*backbone*.onnx"))
    head = sorted(model.glob("*head*.onnx"))
    if not backbone or not head:
        raise ModelNotFoundError(f"NanoTrack ONNX files (*backbone*.onnx, *head*.onnx) not found in {model}")
    return backbone[0], head[0]


def _build_opencv(kind: str, model: Path | None) -> OpenCVTracker:
    import cv2

    if kind in ("nano", "vit") and model is None:
        raise ModelNotFoundError(f"the '{kind}' peer needs its ONNX model: give it as {kind}=PATH, or set "
                                 "EDGETRACK_SHARED to a folder holding weights/nanotrack/nanotrackv2 and "
                                 "weights/vittrack")

    if kind in ("kcf", "csrt", "mil"):
        create = {"kcf": cv2.TrackerKCF_create, "csrt": cv2.TrackerCSRT_create, "mil": cv2.TrackerMIL_create}
        return OpenCVTracker(create[kind]())
    if kind == "nano":
        backbone, head = _nano_files(model)
        params = cv2.TrackerNano_Params()
        params.backbone, params.neckhead = str(backbone), str(head)
        return OpenCVTracker(cv2.TrackerNano_create(params))
    if not model.is_file():
        raise ModelNotFoundError(f"VitTrack ONNX file not found: {model}")
    params = cv2.TrackerVit_Params()
    params.net = str(model)
    return OpenCVTracker(cv2.TrackerVit_create(params))


@dataclass(frozen=True)
class TrackerFactory:
    """A picklable recipe for a tracker, so worker processes can build their own.

    ``kind``: ``"edgetrack"`` (``model`` None/"default" = edgetrack's default model, or a model path),
    an OpenCV peer (``"kcf" "csrt" "mil" "nano" "vit"``; ``model`` overrides the ONNX location),
    ``"identity"``, or ``"import"`` (``model="package.module:Class"``, built with ``kwargs``).
    """

    kind: str
    model: str | None = None
    backend: str = "auto"
    name: str | None = None
    threads: int = 1
    kwargs: tuple[tuple[str, Any], ...] = ()
    device: str = "cpu"
    allow_ungated: bool = False
    long_term: bool = True  # edgetrack: the mode Tracker() runs (the spec's long_term); False = short-term

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown tracker kind '{self.kind}'; choose one of {', '.join(KINDS)}")

    @property
    def label(self) -> str:
        """The tracker's name in result folders and reports."""
        if self.name:
            return self.name
        if self.kind in PEERS:
            return f"opencv-{self.kind}"
        if self.kind == "edgetrack":
            return "edgetrack" if self.model in (None, "default") else f"edgetrack-{Path(self.model).stem}"
        if self.kind == "import":
            return str(self.model).rsplit(":", 1)[-1]
        return self.kind

    def model_path(self) -> Path | None:
        if self.kind in ("nano", "vit"):
            return Path(self.model) if self.model else default_peer_model(self.kind)
        if self.kind == "edgetrack" and self.model not in (None, "default"):
            return Path(self.model)
        return None

    def model_files(self) -> list[Path]:
        """The files holding this tracker's weights (empty when there are none or they are unknown)."""
        path = self.model_path()
        if path is None or not path.exists():
            return []
        if self.kind == "nano":
            return list(_nano_files(path))
        return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]

    def build(self) -> Any:
        """A fresh tracker instance (one per sequence)."""
        if self.kind in PEERS:
            return _build_opencv(self.kind, self.model_path())
        if self.kind == "identity":
            return IdentityTracker()
        if self.kind == "import":
            module, _, attr = str(self.model).partition(":")
            if not module or not attr:
                raise InputError(f"import trackers are named 'package.module:Class', got '{self.model}'")
            return getattr(importlib.import_module(module), attr)(**dict(self.kwargs))
        return self._build_edgetrack()

    def _build_edgetrack(self) -> Any:
        try:
            from edgetrack import Tracker  # imported lazily: workers build their own
        except ImportError as e:
            raise ModelError(f"edgetrack.Tracker is not available in this installation ({e})") from None
        from edgetrack.runtime.confidence import Recovery

        model = None if self.model in (None, "default") else self.model
        return Tracker(model=model, backend=self.backend, threads=self.threads, device=self.device,
                       allow_ungated=self.allow_ungated, recovery=None if self.long_term else Recovery(enabled=False))


def peer_factories(names: str | list[str] | None) -> list[TrackerFactory]:
    """Factories for comma-separated OpenCV peer names (``"kcf,csrt,nano=PATH"``; ``"none"`` or empty: none)."""
    if names is None:
        return []
    items = names.split(",") if isinstance(names, str) else list(names)
    items = [n.strip() for n in items if n.strip() and n.strip().lower() != "none"]
    pairs = {}
    for item in items:  # "kcf", or "nano=PATH" / "vit=PATH" with the peer's ONNX model
        kind, _, path = item.partition("=")
        pairs.setdefault(kind.strip().lower(), path.strip() or None)
    unknown = [n for n in pairs if n not in PEERS]
    if unknown:
        raise InputError(f"unknown peer tracker(s) {unknown}; choose from {', '.join(PEERS)}")
    return [TrackerFactory(kind=n, model=path) for n, path in pairs.items()]


def pin_threads() -> None:
    """One compute thread for OpenCV and the BLAS/OpenMP pools (env vars act on libraries loaded later)."""
    for var in THREAD_ENV:
        os.environ[var] = "1"
    import cv2

    cv2.setNumThreads(1)
