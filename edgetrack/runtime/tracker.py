"""The public single-target tracker: one API over every backend. numpy + OpenCV only.

A :class:`Tracker` is a :class:`~.session.Session` (model, backend, device) with one target's state
(:class:`~.target.TargetState`); :class:`~edgetrack.MultiTracker` is the same session with many.
"""
from __future__ import annotations

import os
import time

import numpy as np

from ..errors import FrameError, StateError
from ..geometry import check_box, check_frame
from .confidence import Recovery
from .session import Session, SessionOwner, available_cpus, check_threads
from .target import TargetState, TrackResult, make_result

__all__ = ["TrackResult", "Tracker", "available_cpus", "check_threads"]


class Tracker(SessionOwner):
    """Single-object Siamese tracker.

    ``model`` is an edgetrack checkpoint, an exported folder, or the name of a bundled model: ``None``,
    ``"default"`` or ``"accurate"`` for the bundled default, ``"fast"`` for the smaller student
    (``edgetrack.list_models()``; an existing path of the same name wins over a name).
    ``backend`` is ``"auto"``, ``"onnxruntime"``, ``"torch"``, ``"openvino"`` or ``"tensorrt"``. ``auto`` takes
    TensorRT engines when the folder has them and TensorRT + a CUDA GPU answer, else an OpenVINO IR when
    openvino is installed, else the ONNX graphs on onnxruntime, else a checkpoint on torch. ``openvino`` and
    ``tensorrt`` also run a plain ONNX folder (TensorRT builds engines once and caches them).
    ``device``: ``"cpu"``; ``"gpu"``, ``"GPU.1"`` or ``"npu"`` for OpenVINO; ``"cuda:N"`` for TensorRT (which
    uses GPU 0 when given ``"cpu"``), torch and onnxruntime's CUDA provider. ``threads`` sets the CPU threads.
    Frames are HxWx3 uint8 in ``input_order`` ("BGR", OpenCV's order, or "RGB").

    A device the backend cannot use is an error, never a silent fallback to the CPU; ``repr`` shows the
    device (for onnxruntime, the execution provider) actually in use. ``threads`` is capped at the CPUs available.

    An exported folder loads only when ``edgetrack-export``'s accuracy gate passed it (its ``export.json`` says
    ``"status": "ok"``); ``allow_ungated=True`` loads one without (e.g. straight from ``export_onnx``) or with a
    failed gate, with a warning. Checkpoints and bundled models need no gate.

    At load both graphs run once on zeros and their output sizes are checked against the spec.
    Loading logs one INFO line (logger ``edgetrack.runtime.tracker``). The first inference can be slow (graph
    compilation, allocation): call ``warmup()`` once after loading so the first ``init`` does not stall.

    One ``Tracker`` serves one thread at a time: a call while another thread is inside ``init``/``update``
    raises :class:`StateError` (the state would be mixed up). Use one tracker per thread.

    ``close()`` releases the backend (later calls raise :class:`StateError`); ``with Tracker(...) as t:`` closes
    it on leaving the block. Several targets on one frame: :class:`edgetrack.MultiTracker`.

    Every result has a ``state`` (TRACKING, UNCERTAIN, LOST) and a calibrated ``confidence`` (the spec's
    ``calibration``; docs/states.md). ``recovery`` is what the tracker does while LOST: by default
    ``Recovery()`` (report the last trusted box, search a growing region and, every other update, the whole
    frame in tiles, until the target is found again); ``Recovery(enabled=False)`` keeps following as a
    short-term tracker does. A model whose spec says ``long_term: false`` (it tracked worse with the mode on
    held-out footage; ``spec.long_term_note`` says where) starts with it off; ``recovery=Recovery()`` turns it on.
    """

    def __init__(self, model: str | os.PathLike | None = None, backend: str = "auto", threads: int = 1,
                 input_order: str = "BGR", device: str = "cpu", allow_ungated: bool = False,
                 recovery: Recovery | None = None) -> None:
        self._session = Session(model, backend, threads, input_order, device, allow_ungated, owner="Tracker",
                                recovery=recovery)
        self._target: TargetState | None = None
        self.init_ms = float("nan")

    def warmup(self) -> float:
        """Run the template and search graphs once on dummy inputs (tracking state untouched); returns ms.

        Not called automatically: call it after loading when the first ``init``/``update`` must not stall.
        """
        return self._session.warmup()  # both graphs on zeros, as at load

    @property
    def initialized(self) -> bool:
        return self._target is not None

    def init(self, frame: np.ndarray, box) -> None:
        """Start tracking the object in ``box`` = (x, y, w, h) on ``frame``."""
        frame = check_frame(frame)
        arr = check_box(box, frame.shape)
        with self._session.exclusive():
            start = time.perf_counter()
            self._target = self._session.start(frame, arr)
            self.init_ms = (time.perf_counter() - start) * 1000.0

    def update(self, frame: np.ndarray) -> TrackResult:
        """Locate the object in the next frame."""
        with self._session.exclusive():
            return self._update(frame)

    def _update(self, frame: np.ndarray) -> TrackResult:
        st = self._target
        if st is None:
            raise StateError("update() called before init(); call init(frame, box) first")
        frame = check_frame(frame)
        if frame.shape[:2] != st.shape:
            raise FrameError(f"frame size changed from {st.shape[1]}x{st.shape[0]} to "
                             f"{frame.shape[1]}x{frame.shape[0]} since init(); call init() again")
        start = time.perf_counter()
        (score,) = self._session.step(frame, [st])
        return make_result(st, score, (time.perf_counter() - start) * 1000.0, self.spec)
