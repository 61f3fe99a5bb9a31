"""The session: one model on one backend and device, shared by every target of a tracker (numpy + OpenCV only).

It owns what does not change from target to target: the model files and their spec (and the accuracy gate on
load), the backend and its device, the input channel order, the family's search (:mod:`.target`) and the
load-time graph check. :meth:`Session.step` searches any number of targets with ONE call of the search graph:
every target's search crops in one batch, each paired with its own template features.

A session serves one thread at a time (:meth:`Session.exclusive`); its owner (a ``Tracker`` or a
``MultiTracker``) wraps every call in it.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager

import numpy as np

from ..errors import EdgeTrackError, InputError, ModelError, StateError
from ..geometry import padding_colour, to_network_input, xywh_to_cxcywh
from ..spec import DECODING_CONSTANTS, TrackerSpec
from .backends import open_backend
from .checks import check_graphs, require_finite
from .confidence import Recovery, State, Watch, calibration_of, score_evidence, sigmoid
from .model_files import check_gate, locate
from .target import TargetState, batch_templates, search_for
from .template_memory import MemoryPolicy, check_memory_graph

#: The most targets ``warmup`` runs the search graph for at once (a batch of 1024 is about 1.7 GB of memory with
#: the bundled default).
MAX_WARMUP_TARGETS = 1024
logger = logging.getLogger("edgetrack.runtime.tracker")  # the name the load line has always been logged under


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(threads: object) -> int:
    """``threads`` as a positive int capped at the CPUs available (``True`` and ``2.0`` are errors)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be a positive integer, got {threads!r}")
    cpus = available_cpus()
    if threads > cpus:
        logger.warning("threads=%d capped at the %d CPU(s) available", threads, cpus)
    return min(threads, cpus)


class Session:
    """A loaded model ready to search; ``owner`` and ``calls`` name the public object and its calls in error
    messages."""

    def __init__(self, model: str | os.PathLike | None = None, backend: str = "auto", threads: int = 1,
                 input_order: str = "BGR", device: str = "cpu", allow_ungated: bool = False,
                 owner: str = "Tracker", calls: str = "init()/update()", recovery: Recovery | None = None) -> None:
        if recovery is not None and not isinstance(recovery, Recovery):
            raise InputError(f"recovery must be an edgetrack Recovery(...) or None, got {type(recovery).__name__}")
        if input_order not in ("BGR", "RGB"):
            raise InputError(f"input_order must be 'BGR' or 'RGB', got {input_order!r}")
        threads = check_threads(threads)
        if not isinstance(device, str) or not device.strip():
            raise InputError(f"device must be a non-empty string such as 'cpu' or 'cuda:0', got {device!r}")
        self.owner, self._calls = owner, calls
        self._busy = threading.Lock()
        self._closed = False
        self.files = locate(model)
        check_gate(self.files, allow_ungated)
        self.spec: TrackerSpec = self.files.spec
        self.backend = open_backend(self.files, backend, threads=threads, device=device)
        self.backend_name = self.backend.name
        self.device = str(getattr(self.backend, "device", device))
        logger.info("loading %s with backend %s on %s", self.files.name or self.files.root, self.backend.name,
                    self.device)
        self.input_order = input_order
        self._swap = input_order != self.spec.channel_order
        self.search = search_for(self.spec)
        self.calibration = calibration_of(self.spec)
        # families that cannot search windows anywhere keep following while LOST (their state is still reported);
        # a spec whose model tracked worse with the long-term mode turns it off unless the caller asks for it
        default = Recovery() if self.spec.long_term else Recovery(enabled=False)
        self.recovery = (recovery or default) if self.search.recovers else Recovery(enabled=False)
        self._batches: bool | None = None  # whether the search graph takes a batch (see _takes_batches)
        check_graphs(self.backend, self.spec, self.files.root, self.search.crops_per_target)
        # the vit family's condensed template memory, when the spec turns it on (memory_tokens > 0)
        self.memory = MemoryPolicy(self.spec) if self.spec.memory_tokens else None
        if self.memory is not None:
            check_memory_graph(self.backend, self.spec, self.files.root)

    def describe(self) -> str:
        """``model=..., family=..., backend=..., device=...`` for the owner's ``repr``."""
        name = self.backend.name if self.backend is not None else self.backend_name
        return (f"model={str(self.files.root)!r}, family={self.spec.family!r}, backend={name!r}, "
                f"device={self.device!r}{', closed' if self._closed else ''}")

    @contextmanager
    def exclusive(self, closing: bool = False):
        """Hold the session for one call; StateError when another thread holds it, or when it is closed."""
        if not self._busy.acquire(blocking=False):
            raise StateError(f"this {self.owner} is already running {self._calls} in another thread; one "
                             f"{self.owner} serves one thread at a time: create one {self.owner} per thread")
        try:
            if self._closed and not closing:
                raise StateError(f"this {self.owner} is closed; create a new one")
            yield
        finally:
            self._busy.release()

    def close(self) -> None:
        """Release the backend (its sessions, device buffers); later calls raise StateError. Idempotent."""
        with self.exclusive(closing=True):
            if self._closed:
                return
            self._closed = True
            backend, self.backend = self.backend, None
            close = getattr(backend, "close", None)
            if callable(close):
                close()

    def set_decoding(self, values: dict[str, float]) -> None:
        """Decode with these :data:`~edgetrack.spec.DECODING_CONSTANTS` from the next update on (checked like any
        spec: SpecError on a bad value, InputError on another name)."""
        unknown = sorted(set(values) - set(DECODING_CONSTANTS))
        if unknown:
            raise InputError(f"set_decoding() takes {', '.join(DECODING_CONSTANTS)}; not {', '.join(unknown)}")
        with self.exclusive():
            self.spec = self.spec.with_(**values)
            self.search.spec = self.spec  # the family's search reads its spec at every update

    def warmup(self, targets: int = 1) -> float:
        """Both graphs once on zeros, the search graph at the batch of ``targets`` targets (at most
        :data:`MAX_WARMUP_TARGETS`); returns ms."""
        if not 1 <= targets <= MAX_WARMUP_TARGETS:
            raise InputError(f"warmup targets must be from 1 to {MAX_WARMUP_TARGETS}, got {targets} (the dummy "
                             "search batch grows with it: about 1.7 MB a target for the bundled default)")
        with self.exclusive():
            start = time.perf_counter()
            try:
                check_graphs(self.backend, self.spec, self.files.root, self.search.crops_per_target * targets)
            except MemoryError as exc:
                raise InputError(f"warmup for {targets} targets needs more memory than this machine has; warm up "
                                 "for fewer targets") from exc
            return (time.perf_counter() - start) * 1000.0

    def prep(self, crops: np.ndarray) -> np.ndarray:
        if crops.ndim == 3:
            crops = crops[None]
        return to_network_input(crops, self.spec.mean, self.spec.std, self._swap)

    def start(self, frame: np.ndarray, arr: np.ndarray) -> TargetState:
        """A new target in the checked box ``arr`` (x, y, w, h) of the checked ``frame``: its template features."""
        cx, cy, w, h = xywh_to_cxcywh(arr)
        fill = padding_colour(frame)
        zfs = self._embed(frame, (cx, cy, w, h), fill)
        watch = Watch(self.calibration, self.recovery, self.spec.lost_threshold)
        watch.start((float(cx), float(cy), float(w), float(h)))
        memory = self.memory.start(zfs[0]) if self.memory is not None else None
        return TargetState(float(cx), float(cy), float(w), float(h), fill, list(zfs), frame.shape[:2], watch,
                           memory=memory)

    def _embed(self, frame: np.ndarray, box, fill) -> list[np.ndarray]:
        """The template graph's outputs for a template crop around ``box`` (cx, cy, w, h)."""
        zfs = self.backend.run_template(self.prep(self.search.template_crop(frame, *box, fill)))
        require_finite(zfs, "template", self.files.root)
        return list(zfs)

    def step(self, frame: np.ndarray, states: list[TargetState]) -> list[float]:
        """Search every target of ``states`` in ``frame`` with one call of the search graph; moves each state and
        returns the scores in the same order."""
        plans = [self._plan(frame, st) for st in states]
        counts = [len(crops) for crops, _ in plans]
        x = self.prep(plans[0][0] if len(plans) == 1 else np.concatenate([crops for crops, _ in plans]))
        scores = []
        for st, (_, windows), rows in zip(states, plans, self._search_rows(x, states, counts)):
            scores.append(self._finish(rows, st, windows, frame.shape))
            if st.memory is not None and windows is None:
                self._remember(frame, st, rows)
        return scores

    def _search_rows(self, x: np.ndarray, states: list[TargetState], counts: list[int]) -> list[list[np.ndarray]]:
        """Each target's rows of the search outputs. Targets whose template inputs have the same shapes share a
        call (all of them, unless template memories of different sizes are being searched)."""
        if len(states) == 1:
            outs = self._run_search(x, batch_templates([states[0].zfs], counts[0]), 1)
            require_finite(outs[:self.search.outputs_used], "search", self.files.root)
            return [list(outs)]
        groups: dict[tuple, list[int]] = {}
        for i, st in enumerate(states):
            groups.setdefault(tuple(np.shape(z) for z in st.zfs), []).append(i)
        starts = np.cumsum([0, *counts])
        rows: list[list[np.ndarray]] = [[] for _ in states]
        for members in groups.values():
            xs = x if len(groups) == 1 else np.concatenate([x[starts[i]:starts[i + 1]] for i in members])
            n = [counts[i] for i in members]
            outs = self._run_search(xs, batch_templates([states[i].zfs for i in members], n), len(members))
            require_finite(outs[:self.search.outputs_used], "search", self.files.root)
            for i, end, k in zip(members, np.cumsum(n), n):
                rows[i] = [o[end - k:end] for o in outs]
        return rows

    def _remember(self, frame: np.ndarray, st: TargetState, rows: list[np.ndarray]) -> None:
        """The template memory after a search: condense waiting tokens in by the attention the search paid them,
        take a new template when one is due and the update trusted (:mod:`.template_memory`)."""
        memory, policy = st.memory, self.memory
        policy.absorb(memory, rows[3][0])
        if policy.wants(memory, st.watch.state, st.watch.confidence):
            policy.take(memory, self._embed(frame, (st.cx, st.cy, st.w, st.h), st.fill)[0])
        st.zfs = [memory.search_tokens()]

    def _plan(self, frame: np.ndarray, st: TargetState):
        """(search crops, recovery windows or None) of one target: its ordinary crops, or, while it is LOST and
        recovery is on, the windows its :class:`~.confidence.Watch` asks for."""
        if not st.watch.recovering():
            return self.search.crops(frame, st), None
        windows = st.watch.windows((st.cx, st.cy, st.w, st.h), frame.shape, self.search.search_side(st))
        if len(windows) > 1 and not self._takes_batches(st):
            windows = windows[:1]  # the widened window only
        return self.search.window_crops(frame, st, windows), windows

    def _takes_batches(self, st: TargetState) -> bool:
        """Whether the search graph takes several crops in one call (asked once, at the first tiled search; a
        graph exported with a static batch does not, and then searches no tiles)."""
        if self._batches is None:
            i = self.spec.instance_size
            try:
                self.backend.run_search(np.zeros((2, 3, i, i), np.float32), batch_templates([st.zfs], 2))
                self._batches = True
            except Exception:  # vendor runtimes raise their own types on a batch the graph cannot take
                logger.warning("%s: the search graph takes one crop at a time (static batch): the full-frame "
                               "search in tiles is off while a target is LOST", self.files.root)
                self._batches = False
        return self._batches

    def _finish(self, outs: list[np.ndarray], st: TargetState, windows, frame_shape) -> float:
        """Move one target by its rows of the outputs, update its confidence and state; returns its score."""
        if windows is None:
            st.evidence = {}
            score = self.search.step(outs, st, frame_shape)
            box = st.watch.searched((st.cx, st.cy, st.w, st.h), st.evidence or score_evidence(score))
            if box != (st.cx, st.cy, st.w, st.h) or st.watch.state is State.LOST:
                st.stop()  # held at the last trusted box, or lost: no motion to follow
            st.cx, st.cy, st.w, st.h = box
            return score
        st.stop()
        found = st.watch.recovered(self.search.recovery_candidates(outs, st, windows, frame_shape))
        if found is not None:
            st.cx, st.cy = found[0], found[1]
        return sigmoid(st.watch.evidence["peak"])

    def _run_search(self, x: np.ndarray, zfs: list[np.ndarray], targets: int) -> list[np.ndarray]:
        if targets == 1:
            return self.backend.run_search(x, zfs)
        try:
            return self.backend.run_search(x, zfs)
        except EdgeTrackError:
            raise
        except Exception as exc:  # vendor runtimes raise their own types on a batch the graph cannot take
            raise ModelError(f"{self.files.root}: the search graph cannot take a batch of {x.shape[0]} crops "
                             f"({targets} targets): {exc}. Several targets need graphs exported with a dynamic "
                             "batch (edgetrack-export without --static-batch)") from exc


class SessionOwner:
    """What ``Tracker`` and ``MultiTracker`` share: their session's model, backend and device as attributes,
    ``close()`` and the context manager. ``backend`` may be replaced (tests and the export gate wrap it)."""

    _session: Session

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._session.describe()})"

    def close(self) -> None:
        """Release the backend; later calls raise StateError. Closing twice is harmless."""
        self._session.close()

    def set_decoding(self, **constants: float) -> None:
        """Change how candidates are chosen from the next update on, e.g. ``set_decoding(window_influence=0.3)``
        to let the box move further per update (footage with large jumps): any of ``window_influence``,
        ``penalty_k``, ``lr``, ``motion_gain``, ``motion_smooth`` (their meaning: :class:`~edgetrack.TrackerSpec`).
        The model files are not changed; ``edgetrack tune`` chooses and stores them."""
        self._session.set_decoding(constants)

    @property
    def files(self):
        return self._session.files

    @property
    def spec(self) -> TrackerSpec:
        return self._session.spec

    @property
    def backend(self):
        return self._session.backend

    @backend.setter
    def backend(self, value) -> None:
        self._session.backend = value

    @property
    def device(self) -> str:
        return self._session.device

    @property
    def input_order(self) -> str:
        return self._session.input_order
