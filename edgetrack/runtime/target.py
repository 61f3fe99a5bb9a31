"""One target: its state, its result, and how each family turns a search into that target's next state.

Everything per target lives here (numpy + OpenCV only); the session (:mod:`.session`) owns the model and runs
the graphs, for one target (:class:`~edgetrack.Tracker`) or many in one batched call
(:class:`~edgetrack.MultiTracker`). A family's search is one class with two steps, ``crops`` (the search crops
of one target, before the network) and ``step`` (that target's slice of the network outputs -> new state and
score, after it); :data:`SEARCHES` is the one place a spec's family picks its class.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError
from ..geometry import clip_state, context_size, crop_square
from ..spec import TrackerSpec
from . import centre_head as ch
from . import postprocess as pp
from .confidence import State, Watch, candidate_evidence, map_evidence
from .template_memory import TemplateMemory


@dataclass(frozen=True)
class TrackResult:
    """One frame's answer: ``box`` is (x, y, w, h) floats; ``score`` the network's raw score of the box in [0, 1];
    ``latency_ms`` the whole ``update`` call (crop, network, decoding); ``state`` TRACKING, UNCERTAIN or LOST and
    ``confidence`` the calibrated probability that the box is on the target (docs/states.md); ``lost`` is True
    exactly when the state is LOST (the box is then the last trusted one); ``features`` the evidence the
    confidence comes from (:data:`edgetrack.runtime.confidence.FEATURES`)."""

    box: tuple[float, float, float, float]
    score: float
    latency_ms: float
    lost: bool = False
    confidence: float = 1.0
    state: State = State.TRACKING
    features: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass
class TargetState:
    """What is known about one target between frames: centre and size in frame pixels, the colour its crops are
    padded with, its template features (the template graph's outputs, batch 1), and the frame size at init."""

    cx: float
    cy: float
    w: float
    h: float
    fill: tuple[float, float, float]
    zfs: list[np.ndarray]
    shape: tuple[int, int]
    watch: Watch | None = None  # confidence, state and recovery (set by the session)
    evidence: dict[str, float] = field(default_factory=dict)  # the last search's, set by the family's step
    memory: TemplateMemory | None = None  # the vit family's template memory, when the spec turns it on
    velocity: tuple[float, float] = (0.0, 0.0)  # frame px per update, for a spec's motion_gain (see CandidateSearch)
    centre: tuple[float, float] | None = None  # where the last search crop was centred

    def stop(self) -> None:
        """Forget the motion: the box was reset (re-acquired, or held while LOST)."""
        self.velocity, self.centre = (0.0, 0.0), None

    def box(self) -> tuple[float, float, float, float]:
        """The current box as (x, y, w, h) floats."""
        cx, cy, w, h = float(self.cx), float(self.cy), float(self.w), float(self.h)
        return (cx - (w - 1) / 2, cy - (h - 1) / 2, w, h)  # geometry.cxcywh_to_xywh, without an array


def make_result(state: TargetState, score: float, latency_ms: float, spec: TrackerSpec) -> TrackResult:
    """The answer for one target after a step."""
    w = state.watch
    return TrackResult(state.box(), score, latency_ms, w.state is State.LOST, w.confidence, w.state, dict(w.evidence))


class FamilySearch:
    """How one family of networks searches. ``crops_per_target`` search crops go into the search graph for each
    target (each paired with that target's template features); the first ``outputs_used`` outputs are decoded."""

    crops_per_target = 1
    outputs_used = 1
    recovers = False  # True: searches windows of any size and place while the target is LOST (see below)

    def __init__(self, spec: TrackerSpec) -> None:
        self.spec = spec

    def template_crop(self, frame: np.ndarray, cx: float, cy: float, w: float, h: float,
                      fill: tuple[float, float, float]) -> np.ndarray:
        """The exemplar crop around a new target (HxWx3 uint8)."""
        s_z = round(context_size(w, h, self.spec.context_amount))
        return crop_square(frame, (cx, cy), s_z, self.spec.exemplar_size, fill)

    def crops(self, frame: np.ndarray, st: TargetState) -> np.ndarray:
        """This target's search crops, ``(crops_per_target, S, S, 3)`` uint8."""
        raise NotImplementedError

    def step(self, outs: list[np.ndarray], st: TargetState, frame_shape: tuple[int, ...]) -> float:
        """Move ``st`` by this target's ``crops_per_target`` rows of the search outputs; returns the score."""
        raise NotImplementedError


class CandidateSearch(FamilySearch):
    """One search crop; every score-map cell proposes a box; pysot's penalties and cosine window pick one."""

    outputs_used = 2

    def __init__(self, spec: TrackerSpec) -> None:
        super().__init__(spec)
        self.window = pp.cosine_window(spec.score_size)

    recovers = True

    def candidates(self, cls: np.ndarray, reg: np.ndarray) -> pp.Candidates:
        raise NotImplementedError

    def _scale_z(self, st: TargetState) -> float:
        return self.spec.exemplar_size / context_size(st.w, st.h, self.spec.context_amount)

    def crops(self, frame: np.ndarray, st: TargetState) -> np.ndarray:
        spec = self.spec
        s_x = context_size(st.w, st.h, spec.context_amount) * spec.instance_size / spec.exemplar_size
        st.centre = self._centre(st, frame.shape)
        return crop_square(frame, st.centre, round(s_x), spec.instance_size, st.fill)[None]

    def _centre(self, st: TargetState, frame_shape: tuple[int, ...]) -> tuple[float, float]:
        """The search crop's centre: the last position, led by ``motion_gain`` times the velocity (in the frame)."""
        gain = self.spec.motion_gain
        if not gain:
            return st.cx, st.cy
        ih, iw = frame_shape[:2]
        return (min(max(st.cx + gain * st.velocity[0], 0.0), float(iw)),
                min(max(st.cy + gain * st.velocity[1], 0.0), float(ih)))

    def step(self, outs: list[np.ndarray], st: TargetState, frame_shape: tuple[int, ...]) -> float:
        scale_z = self._scale_z(st)
        cands = self.candidates(outs[0][0], outs[1][0])
        choice = pp.choose(cands, st.w * scale_z, st.h * scale_z, self.window, self.spec)
        st.evidence = candidate_evidence(cands.scores, self.spec.score_size, choice.box, choice.score,
                                         st.w * scale_z, st.h * scale_z)
        dx, dy, bw, bh = choice.box / scale_z
        w = st.w * (1 - choice.lr) + bw * choice.lr
        h = st.h * (1 - choice.lr) + bh * choice.lr
        cx, cy = st.centre if st.centre is not None else (st.cx, st.cy)
        old = st.cx, st.cy
        st.cx, st.cy, st.w, st.h = clip_state(cx + dx, cy + dy, w, h, frame_shape)
        if self.spec.motion_gain:
            k = self.spec.motion_smooth
            st.velocity = (k * st.velocity[0] + (1 - k) * (st.cx - old[0]),
                           k * st.velocity[1] + (1 - k) * (st.cy - old[1]))
        return choice.score

    def search_side(self, st: TargetState) -> float:
        """Side in frame pixels of this target's normal search crop."""
        return self.spec.instance_size / self._scale_z(st)

    def window_crops(self, frame: np.ndarray, st: TargetState, windows) -> np.ndarray:
        """Search crops of a recovery search: one per window (cx, cy, side) in frame pixels."""
        return np.stack([crop_square(frame, (cx, cy), round(side), self.spec.instance_size, st.fill)
                         for cx, cy, side in windows])

    def recovery_candidates(self, outs: list[np.ndarray], st: TargetState, windows,
                            frame_shape: tuple[int, ...]) -> list[tuple[dict[str, float], tuple]]:
        """(evidence, centre box) of each window's best cell, with no cosine window (the target may be anywhere
        in it); the target keeps its size."""
        spec, flat, out = self.spec, np.zeros_like(self.window), []
        for j, (cx, cy, side) in enumerate(windows):
            scale = spec.instance_size / side
            cands = self.candidates(outs[0][j], outs[1][j])
            choice = pp.choose(cands, st.w * scale, st.h * scale, flat, spec)
            evidence = candidate_evidence(cands.scores, spec.score_size, choice.box, choice.score, st.w * scale,
                                          st.h * scale)
            dx, dy = choice.box[:2] / scale
            out.append((evidence, clip_state(cx + dx, cy + dy, st.w, st.h, frame_shape)))
        return out


class AnchorFreeSearch(CandidateSearch):
    """NanoTrack / SiamBAN: (left, top, right, bottom) distances from each score-map point."""

    def __init__(self, spec: TrackerSpec) -> None:
        super().__init__(spec)
        self.points = pp.grid_points(spec.score_size, spec.stride, spec.origin)

    def candidates(self, cls: np.ndarray, reg: np.ndarray) -> pp.Candidates:
        return pp.decode_anchor_free(cls, reg, self.points, self.spec.score_activation)


class AnchorSearch(CandidateSearch):
    """SiamRPN: (dx, dy, dw, dh) offsets of the anchors at each score-map cell."""

    def __init__(self, spec: TrackerSpec) -> None:
        super().__init__(spec)
        self.anchors = pp.make_anchors(spec)
        self.window = np.tile(self.window, spec.num_anchors)  # anchor-major, like the anchors

    def candidates(self, cls: np.ndarray, reg: np.ndarray) -> pp.Candidates:
        return pp.decode_anchor_based(cls, reg, self.anchors, self.spec.score_activation)


class ScalePyramidSearch(FamilySearch):
    """SiamFC: one crop per scale of the pyramid; the best scale's upsampled response map gives the move."""

    def __init__(self, spec: TrackerSpec) -> None:
        super().__init__(spec)
        window = pp.cosine_window(spec.score_size * spec.response_up)
        self.window = window / window.sum()
        n = spec.scale_num
        self.scales = spec.scale_step ** np.linspace(-(n // 2), n // 2, n)
        self.crops_per_target = len(self.scales)

    def _x_sz(self, st: TargetState) -> float:
        spec = self.spec
        return context_size(st.w, st.h, spec.context_amount) * spec.instance_size / spec.exemplar_size

    def crops(self, frame: np.ndarray, st: TargetState) -> np.ndarray:
        x_sz = self._x_sz(st)
        return np.stack([crop_square(frame, (st.cx, st.cy), x_sz * f, self.spec.instance_size, st.fill)
                         for f in self.scales])

    def step(self, outs: list[np.ndarray], st: TargetState, frame_shape: tuple[int, ...]) -> float:
        spec, x_sz = self.spec, self._x_sz(st)
        choice = pp.choose_siamfc(outs[0], spec, self.window)
        factor = self.scales[choice.scale_index]
        dx, dy = choice.displacement * x_sz * factor / spec.instance_size
        response = np.asarray(outs[0][choice.scale_index], dtype=np.float64)
        size = max(float(np.sqrt(st.w * st.h)), 1e-6)
        st.evidence = map_evidence(0.5 * (1.0 + np.tanh(0.5 * response.reshape(response.shape[-2:]))),
                                   choice.score, (dx / size, dy / size), factor)
        scale = (1 - spec.scale_lr) + spec.scale_lr * factor
        st.cx, st.cy, st.w, st.h = clip_state(st.cx + dx, st.cy + dy, st.w * scale, st.h * scale, frame_shape)
        return choice.score


class CentreSearch(FamilySearch):
    """One-stream ViT (OSTrack, OpenCV's VitTrack): one search crop; the centre head's best cell after the Hann
    window gives the box (:mod:`.centre_head`); below the spec's ``lost_threshold`` the target does not move."""

    outputs_used = 3

    def __init__(self, spec: TrackerSpec) -> None:
        super().__init__(spec)
        self.window = ch.hann_window(spec.score_size)

    def template_crop(self, frame: np.ndarray, cx: float, cy: float, w: float, h: float,
                      fill: tuple[float, float, float]) -> np.ndarray:
        return crop_square(frame, (cx, cy), round(ch.template_side(self.spec, w, h)), self.spec.exemplar_size, fill)

    def crops(self, frame: np.ndarray, st: TargetState) -> np.ndarray:
        side = round(ch.search_side(self.spec, st.w, st.h))
        return crop_square(frame, (st.cx, st.cy), side, self.spec.instance_size, st.fill)[None]

    def step(self, outs: list[np.ndarray], st: TargetState, frame_shape: tuple[int, ...]) -> float:
        score = outs[0][0]
        choice = ch.decode(score, outs[1][0], outs[2][0], self.window, self.spec.window_influence)
        old = (st.cx, st.cy, st.w, st.h)
        side = max(1, round(ch.search_side(self.spec, st.w, st.h)))
        st.cx, st.cy, st.w, st.h = ch.next_state(*old, side, choice, self.spec, frame_shape)
        size = max(float(np.sqrt(old[2] * old[3])), 1e-6)
        st.evidence = map_evidence(score.reshape(score.shape[-2:]), choice.score,
                                   ((st.cx - old[0]) / size, (st.cy - old[1]) / size), np.sqrt(st.w * st.h) / size)
        return choice.score


#: family -> its search: the one place the runtime branches on ``spec.family``.
SEARCHES: dict[str, type[FamilySearch]] = {
    "nanotrack": AnchorFreeSearch,
    "siamrpn": AnchorSearch,
    "siamfc": ScalePyramidSearch,
    "vit": CentreSearch,
}


def search_for(spec: TrackerSpec) -> FamilySearch:
    """The search of ``spec.family``; ModelError for a family this runtime cannot track with yet."""
    if spec.family not in SEARCHES:
        raise ModelError(f"this edgetrack runtime cannot track with a {spec.family!r} model yet (it tracks "
                         f"{', '.join(SEARCHES)}); update edgetrack")
    return SEARCHES[spec.family](spec)


def batch_templates(zf_lists: list[list[np.ndarray]], repeat: int | list[int]) -> list[np.ndarray]:
    """The search graph's template inputs for several targets: each target's features ``repeat`` times (once per
    search crop; a list gives each target's count), targets in order. One target searched once passes its own
    arrays through untouched (the TensorRT backend then binds the copies it still holds on the GPU)."""
    counts = [repeat] * len(zf_lists) if isinstance(repeat, int) else list(repeat)
    if len(zf_lists) == 1 and counts[0] == 1:
        return zf_lists[0]
    return [np.concatenate([np.repeat(zfs[i], n, axis=0) for zfs, n in zip(zf_lists, counts)])
            for i in range(len(zf_lists[0]))]
