"""Several targets on the same frames with one model: one backend session, one search call per frame."""
from __future__ import annotations

import os
import time

import numpy as np

from ..errors import FrameError, InputError
from ..geometry import check_box, check_frame
from .confidence import Recovery
from .session import Session, SessionOwner
from .target import TargetState, TrackResult, make_result


class MultiTracker(SessionOwner):
    """Track several objects in one video with one model.

    ``model``, ``backend``, ``threads``, ``input_order``, ``device``, ``allow_ungated`` and ``recovery`` are those of
    :class:`~edgetrack.Tracker`, and one model is loaded once for every target. ``add(frame, box)`` starts a target
    and returns its id (an int, never reused); ``remove(id)`` stops one; ``update(frame)`` moves every target to the
    next frame and returns ``{id: TrackResult}``. All targets' search crops go through the network in ONE batched
    call, so N targets cost far less than N trackers; each result equals what a single ``Tracker`` started on the
    same box gives, up to float rounding of the batched call. ``latency_ms`` of every result is the whole
    ``update`` call (all targets).

    Per frame: ``update(frame)`` for the targets already there, then ``add(frame, box)`` for any that appear on
    that frame. Every target lives on frames of one size (the size of the frame the first one was added on).

    One ``MultiTracker`` serves one thread at a time (a call from a second thread while one runs raises
    :class:`StateError`); ``close()`` or a ``with`` block releases the backend.
    """

    def __init__(self, model: str | os.PathLike | None = None, backend: str = "auto", threads: int = 1,
                 input_order: str = "BGR", device: str = "cpu", allow_ungated: bool = False,
                 recovery: Recovery | None = None) -> None:
        self._session = Session(model, backend, threads, input_order, device, allow_ungated,
                                owner="MultiTracker", calls="add()/remove()/update()", recovery=recovery)
        self._targets: dict[int, TargetState] = {}
        self._next_id = 1

    @property
    def ids(self) -> tuple[int, ...]:
        """The ids of the targets being tracked, in the order they were added."""
        return tuple(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def __contains__(self, target_id: object) -> bool:
        return target_id in self._targets

    def warmup(self, targets: int | None = None) -> float:
        """Run both graphs once on dummy inputs, the search graph at the batch of ``targets`` targets (default: as
        many as are tracked now, at least one); returns ms. Backends that compile per batch size (OpenVINO) do it
        here instead of on the first ``update`` with that many targets."""
        if targets is None:
            targets = max(1, len(self._targets))
        if isinstance(targets, bool) or not isinstance(targets, int) or targets < 1:
            raise InputError(f"targets must be a positive integer, got {targets!r}")
        return self._session.warmup(targets)

    def _check_size(self, frame: np.ndarray, what: str) -> None:
        if not self._targets:
            return
        h, w = next(iter(self._targets.values())).shape
        if frame.shape[:2] != (h, w):
            raise FrameError(f"{what}: the frame is {frame.shape[1]}x{frame.shape[0]} but the targets were added on "
                             f"{w}x{h} frames; remove them all (or use a new MultiTracker) to change the size")

    def add(self, frame: np.ndarray, box) -> int:
        """Start tracking the object in ``box`` = (x, y, w, h) on ``frame``; returns its id."""
        frame = check_frame(frame)
        arr = check_box(box, frame.shape)
        with self._session.exclusive():
            self._check_size(frame, "add()")
            state = self._session.start(frame, arr)
            target_id, self._next_id = self._next_id, self._next_id + 1
            self._targets[target_id] = state
            return target_id

    def remove(self, target_id: int) -> None:
        """Stop tracking target ``target_id``; InputError when no target has that id."""
        with self._session.exclusive():
            self._targets.pop(self._check_id(target_id))

    def _check_id(self, target_id: object) -> int:
        if isinstance(target_id, bool) or not isinstance(target_id, (int, np.integer)):
            raise InputError(f"target ids are the ints add() returned, got {target_id!r}")
        if target_id not in self._targets:
            raise InputError(f"no target with id {target_id}; tracked now: {list(self._targets) or 'none'}")
        return int(target_id)

    def update(self, frame: np.ndarray) -> dict[int, TrackResult]:
        """Locate every target in the next frame: ``{id: TrackResult}`` in the order they were added (empty when
        nothing is tracked)."""
        frame = check_frame(frame)
        with self._session.exclusive():
            self._check_size(frame, "update()")
            if not self._targets:
                return {}
            start = time.perf_counter()
            states = list(self._targets.values())
            scores = self._session.step(frame, states)
            latency = (time.perf_counter() - start) * 1000.0
            spec = self._session.spec
            return {i: make_result(st, score, latency, spec) for (i, st), score in zip(self._targets.items(), scores)}
