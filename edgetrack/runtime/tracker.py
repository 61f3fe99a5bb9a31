"""The public tracker: one API over every backend. numpy + OpenCV only; all state lives here."""
from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..errors import FrameError, InputError, StateError
from ..geometry import (
    check_box,
    check_frame,
    clip_state,
    context_size,
    crop_square,
    cxcywh_to_xywh,
    padding_colour,
    to_network_input,
    xywh_to_cxcywh,
)
from ..spec import TrackerSpec
from . import postprocess as pp
from .backends import open_backend
from .checks import check_graphs, require_finite
from .model_files import check_gate, locate

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class TrackResult:
    """One frame's answer: ``box`` is (x, y, w, h) floats; ``score`` in [0, 1]; ``lost`` when below the spec's
    ``lost_threshold``; ``latency_ms`` is the whole ``update`` call (crop, network, decoding)."""

    box: tuple[float, float, float, float]
    score: float
    latency_ms: float
    lost: bool = False


@dataclass
class _State:
    cx: float
    cy: float
    w: float
    h: float
    fill: tuple[float, float, float]
    zfs: list[np.ndarray]
    shape: tuple[int, int]


class Tracker:
    """Single-object Siamese tracker.

    ``model`` is an edgetrack checkpoint, an exported folder, or the name of a bundled model: ``None``,
    ``"default"`` or ``"fast"`` for the bundled default, ``"accurate"`` where bundled (``edgetrack.list_models()``;
    an existing path of the same name wins over a name).
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
    """

    def __init__(self, model: str | os.PathLike | None = None, backend: str = "auto", threads: int = 1,
                 input_order: str = "BGR", device: str = "cpu", allow_ungated: bool = False) -> None:
        if input_order not in ("BGR", "RGB"):
            raise InputError(f"input_order must be 'BGR' or 'RGB', got {input_order!r}")
        threads = check_threads(threads)
        if not isinstance(device, str) or not device.strip():
            raise InputError(f"device must be a non-empty string such as 'cpu' or 'cuda:0', got {device!r}")
        self._busy = threading.Lock()
        self.files = locate(model)
        check_gate(self.files, allow_ungated)
        self.spec: TrackerSpec = self.files.spec
        self.backend = open_backend(self.files, backend, threads=threads, device=device)
        self.device = str(getattr(self.backend, "device", device))
        logger.info("loading %s with backend %s on %s", self.files.name or self.files.root, self.backend.name,
                    self.device)
        self.input_order = input_order
        self._swap = input_order != self.spec.channel_order
        self._state: _State | None = None
        self.init_ms = float("nan")
        self._setup_decoding()
        check_graphs(self.backend, self.spec, self.files.root, self._search_batch)

    def __repr__(self) -> str:
        return (f"Tracker(model={str(self.files.root)!r}, family={self.spec.family!r}, "
                f"backend={self.backend.name!r}, device={self.device!r})")

    @property
    def _search_batch(self) -> int:
        """Search crops per update: the scale pyramid for SiamFC, one otherwise."""
        return len(self._scales) if self.spec.family == "siamfc" else 1

    @contextmanager
    def _exclusive(self):
        if not self._busy.acquire(blocking=False):
            raise StateError("this Tracker is already running init()/update() in another thread; one Tracker "
                             "serves one thread at a time: create one Tracker per thread")
        try:
            yield
        finally:
            self._busy.release()

    def _setup_decoding(self) -> None:
        spec = self.spec
        if spec.family == "siamfc":
            window = pp.cosine_window(spec.score_size * spec.response_up)
            self._window = window / window.sum()
            n = spec.scale_num
            self._scales = spec.scale_step ** np.linspace(-(n // 2), n // 2, n)
            return
        self._window = pp.cosine_window(spec.score_size)
        if spec.family == "siamrpn":
            self._anchors = pp.make_anchors(spec)
            self._window = np.tile(self._window, spec.num_anchors)  # anchor-major, like the anchors
        else:
            self._points = pp.grid_points(spec.score_size, spec.stride)

    def warmup(self) -> float:
        """Run the template and search graphs once on dummy inputs (tracking state untouched); returns ms.

        Not called automatically: call it after loading when the first ``init``/``update`` must not stall.
        """
        with self._exclusive():
            start = time.perf_counter()
            check_graphs(self.backend, self.spec, self.files.root, self._search_batch)  # both graphs on zeros
            return (time.perf_counter() - start) * 1000.0

    @property
    def initialized(self) -> bool:
        return self._state is not None

    def _prep(self, crops: np.ndarray) -> np.ndarray:
        if crops.ndim == 3:
            crops = crops[None]
        return to_network_input(crops, self.spec.mean, self.spec.std, self._swap)

    def init(self, frame: np.ndarray, box) -> None:
        """Start tracking the object in ``box`` = (x, y, w, h) on ``frame``."""
        frame = check_frame(frame)
        arr = check_box(box, frame.shape)
        with self._exclusive():
            self._init(frame, arr)

    def _init(self, frame: np.ndarray, arr: np.ndarray) -> None:
        start = time.perf_counter()
        cx, cy, w, h = xywh_to_cxcywh(arr)
        fill = padding_colour(frame)
        s_z = round(context_size(w, h, self.spec.context_amount))
        z = crop_square(frame, (cx, cy), s_z, self.spec.exemplar_size, fill)
        zfs = self.backend.run_template(self._prep(z))
        require_finite(zfs, "template", self.files.root)
        self._state = _State(float(cx), float(cy), float(w), float(h), fill, list(zfs), frame.shape[:2])
        self.init_ms = (time.perf_counter() - start) * 1000.0

    def update(self, frame: np.ndarray) -> TrackResult:
        """Locate the object in the next frame."""
        with self._exclusive():
            return self._update(frame)

    def _update(self, frame: np.ndarray) -> TrackResult:
        if self._state is None:
            raise StateError("update() called before init(); call init(frame, box) first")
        frame = check_frame(frame)
        if frame.shape[:2] != self._state.shape:
            raise FrameError(f"frame size changed from {self._state.shape[1]}x{self._state.shape[0]} to "
                             f"{frame.shape[1]}x{frame.shape[0]} since init(); call init() again")
        start = time.perf_counter()
        if self.spec.family == "siamfc":
            score = self._step_siamfc(frame)
        else:
            score = self._step_candidates(frame)
        st = self._state
        box = tuple(float(v) for v in cxcywh_to_xywh(st.cx, st.cy, st.w, st.h))
        latency = (time.perf_counter() - start) * 1000.0
        return TrackResult(box, score, latency, score < self.spec.lost_threshold)

    def _step_candidates(self, frame: np.ndarray) -> float:
        spec, st = self.spec, self._state
        s_z = context_size(st.w, st.h, spec.context_amount)
        scale_z = spec.exemplar_size / s_z
        s_x = s_z * spec.instance_size / spec.exemplar_size
        x = crop_square(frame, (st.cx, st.cy), round(s_x), spec.instance_size, st.fill)
        cls, reg = self.backend.run_search(self._prep(x), st.zfs)[:2]
        require_finite((cls, reg), "search", self.files.root)
        if spec.family == "siamrpn":
            cands = pp.decode_anchor_based(cls[0], reg[0], self._anchors, spec.score_activation)
        else:
            cands = pp.decode_anchor_free(cls[0], reg[0], self._points, spec.score_activation)
        choice = pp.choose(cands, st.w * scale_z, st.h * scale_z, self._window, spec)
        dx, dy, bw, bh = choice.box / scale_z
        w = st.w * (1 - choice.lr) + bw * choice.lr
        h = st.h * (1 - choice.lr) + bh * choice.lr
        st.cx, st.cy, st.w, st.h = clip_state(st.cx + dx, st.cy + dy, w, h, frame.shape)
        return choice.score

    def _step_siamfc(self, frame: np.ndarray) -> float:
        spec, st = self.spec, self._state
        x_sz = context_size(st.w, st.h, spec.context_amount) * spec.instance_size / spec.exemplar_size
        crops = np.stack([crop_square(frame, (st.cx, st.cy), x_sz * f, spec.instance_size, st.fill)
                          for f in self._scales])
        zfs = [np.repeat(zf, len(self._scales), axis=0) for zf in st.zfs]
        response = self.backend.run_search(self._prep(crops), zfs)[0]
        require_finite((response,), "search", self.files.root)
        choice = pp.choose_siamfc(response, spec, self._window)
        factor = self._scales[choice.scale_index]
        dx, dy = choice.displacement * x_sz * factor / spec.instance_size
        scale = (1 - spec.scale_lr) + spec.scale_lr * factor
        st.cx, st.cy, st.w, st.h = clip_state(st.cx + dx, st.cy + dy, st.w * scale, st.h * scale, frame.shape)
        return choice.score
