"""Several targets on the same frames with one model: one backend session, one search call per frame; on
several CPU threads, one session per thread, each searching its share of the targets in one call."""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import FrameError, InputError
from ..geometry import check_box, check_frame
from .confidence import Recovery
from .session import Session, SessionOwner, check_threads
from .target import TargetState, TrackResult, make_result

#: Backends whose ``threads`` are CPU threads: there ``threads`` > 1 runs one single-thread session per thread.
CPU_BACKENDS = ("onnxruntime", "openvino", "torch")


class MultiTracker(SessionOwner):
    """Track several objects in one video with one model.

    ``model``, ``backend``, ``threads``, ``input_order``, ``device``, ``allow_ungated`` and ``recovery`` are those of
    :class:`~edgetrack.Tracker`, and one model is loaded once for every target. ``add(frame, box)`` starts a target
    and returns its id (an int, never reused); ``remove(id)`` stops one; ``update(frame)`` moves every target to the
    next frame and returns ``{id: TrackResult}``. All targets' search crops go through the network in ONE batched
    call, so N targets cost far less than N trackers; each result equals what a single ``Tracker`` started on the
    same box gives, up to float rounding of the batched call. ``latency_ms`` of every result is the whole
    ``update`` call (all targets).

    ``threads`` > 1 on a CPU (``device="cpu"``, ONNX Runtime, OpenVINO or torch) loads one single-thread session
    per thread and splits the targets between them, each share searched in one call, the shares at the same time
    (a small network's convolutions gain little from several threads inside one call; ``benchmarks/
    multi_target.py --split 8x2`` measures 8 targets on 2 threads against 8 one-thread Trackers). On a GPU the
    batch stays one call.

    Per frame: ``update(frame)`` for the targets already there, then ``add(frame, box)`` for any that appear on
    that frame. Every target lives on frames of one size (the size of the frame the first one was added on).

    One ``MultiTracker`` serves one thread at a time (a call from a second thread while one runs raises
    :class:`StateError`); ``close()`` or a ``with`` block releases the backend.
    """

    def __init__(self, model: str | os.PathLike | None = None, backend: str = "auto", threads: int = 1,
                 input_order: str = "BGR", device: str = "cpu", allow_ungated: bool = False,
                 recovery: Recovery | None = None) -> None:
        threads = check_threads(threads)
        split = threads > 1 and isinstance(device, str) and device.strip().lower() == "cpu"

        def session(n: int) -> Session:
            return Session(model, backend, n, input_order, device, allow_ungated, owner="MultiTracker",
                           calls="add()/remove()/update()", recovery=recovery)

        self._session = session(1 if split else threads)
        self._workers: list[Session] = []  # further sessions, one per further thread
        if split and self._session.backend_name in CPU_BACKENDS:
            self._workers = [session(1) for _ in range(threads - 1)]
        elif split:  # a GPU backend given device="cpu" (TensorRT): one call, with the threads asked for
            self._session.close()
            self._session = session(threads)
        self._pool = ThreadPoolExecutor(len(self._workers)) if self._workers else None
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
        sessions = [self._session, *self._workers]
        return sum(s.warmup(len(share)) for s, share in zip(sessions, _shares(list(range(targets)), len(sessions))))

    def set_decoding(self, **constants: float) -> None:
        """:meth:`Tracker.set_decoding <edgetrack.Tracker.set_decoding>`, for every target."""
        for session in (self._session, *self._workers):
            session.set_decoding(constants)

    def close(self) -> None:
        """Release the backends (and the threads); later calls raise StateError. Closing twice is harmless."""
        self._session.close()
        for session in self._workers:
            session.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

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
            scores = self._step(frame, list(self._targets.values()))
            latency = (time.perf_counter() - start) * 1000.0
            spec = self._session.spec
            return {i: make_result(st, score, latency, spec) for (i, st), score in zip(self._targets.items(), scores)}

    def _step(self, frame: np.ndarray, states: list[TargetState]) -> list[float]:
        """Every target searched: in one call, or, with several CPU sessions, each share in one call on its own
        thread (this thread takes the first share)."""
        shares = _shares(states, 1 + len(self._workers))
        if len(shares) == 1:
            return self._session.step(frame, states)
        jobs = [self._pool.submit(w.step, frame, share) for w, share in zip(self._workers, shares[1:])]
        scores = self._session.step(frame, shares[0])
        for job in jobs:
            scores += job.result()
        return scores


def _shares(items: list, parts: int) -> list[list]:
    """``items`` in at most ``parts`` contiguous, non-empty shares as even as can be, in order."""
    parts = max(1, min(parts, len(items)))
    bounds = np.linspace(0, len(items), parts + 1).round().astype(int)
    return [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
