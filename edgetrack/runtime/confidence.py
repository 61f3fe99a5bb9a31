"""Is the box still on the target? Per-frame evidence, the calibrated confidence, the state machine and the
recovery policy (numpy only).

Every update measures a few numbers on the search's score map (:data:`FEATURES`): the chosen cell's score as a
logit (``peak``), how far the peak stands out of the rest of the map (``psr``, peak-to-sidelobe ratio), how spread
the map is (``entropy``), how far the chosen box moved and changed size against the previous box (``motion``,
``size_change``), and how far the peak fell below its level in the first frames (``drop``). The spec's
``calibration`` maps them to a probability that the box is on the target (a logistic model fitted per model on
real and synthetic absent-target frames: ``edgetrack calibrate``); a spec without one gets :data:`DEFAULT`.

States (:class:`State`): TRACKING (confidence at or above ``uncertain_below``), UNCERTAIN (below it), LOST (below
``lost_below`` for ``lost_after`` updates in a row). A LOST target leaves that state when a search finds it again
with confidence at or above ``reacquire_above``. What the tracker does while LOST is a :class:`Recovery` policy.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from ..errors import InputError, SpecError

FEATURES = ("peak", "psr", "entropy", "motion", "size_change", "drop")
_LOGIT_CLIP = 12.0


class State(str, Enum):
    """What a :class:`~edgetrack.TrackResult` says about its box (the value is the name in lower case)."""

    TRACKING = "tracking"
    UNCERTAIN = "uncertain"
    LOST = "lost"

    def __str__(self) -> str:
        return self.name


def logit(p: float) -> float:
    p = min(max(float(p), 1e-6), 1.0 - 1e-6)
    return max(-_LOGIT_CLIP, min(_LOGIT_CLIP, math.log(p / (1.0 - p))))


def sigmoid(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * x))


# ------------------------------------------------------------------------------------------------ evidence
def map_evidence(score_map: np.ndarray, chosen_score: float, move: tuple[float, float],
                 size_ratio: float) -> dict[str, float]:
    """The per-frame numbers of one search, before ``drop`` (which needs the target's history).

    ``score_map``: (S, S) foreground probabilities (for anchor heads, the best anchor per cell); ``chosen_score``
    the score of the cell the tracker chose; ``move``: the chosen box's centre shift in target sizes (dx, dy);
    ``size_ratio``: the chosen box's size over the previous box's (sqrt of the area ratio).
    """
    m = np.asarray(score_map, dtype=np.float64)
    s = m.shape[-1]
    flat = m.reshape(-1)
    iy, ix = divmod(int(flat.argmax()), s)
    r = max(1, s // 8)
    # Peak-to-sidelobe ratio from sums (the map less the (2r+1)^2 window around the peak), in one pass each.
    near = m[max(0, iy - r):iy + r + 1, max(0, ix - r):ix + r + 1]
    n_side = flat.size - near.size
    total, total_sq = float(flat.sum()), float(flat @ flat)
    psr = 0.0
    if n_side:
        mean = (total - float(near.sum())) / n_side
        var = max((total_sq - float(np.vdot(near, near))) / n_side - mean * mean, 0.0)
        psr = (float(m[iy, ix]) - mean) / (math.sqrt(var) + 1e-3)
    entropy = 0.0
    if flat.size > 1:
        p = flat / max(total, 1e-12)
        entropy = min(max(float(-(p @ np.log(np.maximum(p, 1e-12)))) / math.log(flat.size), 0.0), 1.0)
    return {"peak": logit(chosen_score), "psr": min(psr, 50.0), "entropy": entropy,
            "motion": float(math.hypot(*move)), "size_change": abs(math.log(max(size_ratio, 1e-6)))}


def score_evidence(score: float) -> dict[str, float]:
    """Evidence of a search that gives only its score (a family without a score map): a flat map's numbers."""
    return {"peak": logit(score), "psr": 0.0, "entropy": 1.0, "motion": 0.0, "size_change": 0.0}


def candidate_evidence(scores: np.ndarray, score_size: int, box: np.ndarray, score: float, target_w: float,
                       target_h: float) -> dict[str, float]:
    """:func:`map_evidence` of a candidate search (NanoTrack, SiamRPN): ``scores`` of every candidate (anchor-major
    for anchor heads), the chosen ``box`` (cx, cy, w, h relative to the crop centre) and ``score``, and the target
    size, all in search-crop pixels."""
    size = math.sqrt(max(target_w * target_h, 1e-12))
    maps = np.asarray(scores).reshape(-1, score_size, score_size)
    score_map = maps[0] if len(maps) == 1 else maps.max(axis=0)
    ratio = math.sqrt(max(float(box[2] * box[3]), 1e-12)) / size
    return map_evidence(score_map, score, (float(box[0]) / size, float(box[1]) / size), ratio)


# ------------------------------------------------------------------------------------------------ calibration
@dataclass(frozen=True)
class Calibration:
    """A logistic model over :data:`FEATURES` and the thresholds of the state machine.

    ``confidence = sigmoid(bias + sum(weights[i] * feature[features[i]]))``, averaged as logits over the last
    ``smooth`` updates. Stored in the spec as ``calibration`` (:meth:`to_dict`); ``fitted_on`` says on what.
    """

    features: tuple[str, ...] = ("peak",)
    weights: tuple[float, ...] = (1.0,)
    bias: float = 0.0
    smooth: int = 1
    uncertain_below: float = 0.5
    lost_below: float = 0.2
    lost_after: int = 3
    reacquire_above: float = 0.6
    ref_frames: int = 5
    fitted_on: str = ""

    def __post_init__(self) -> None:
        check_calibration(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "weights": [float(w) for w in self.weights], "bias": self.bias,
                "smooth": self.smooth, "uncertain_below": self.uncertain_below, "lost_below": self.lost_below,
                "lost_after": self.lost_after, "reacquire_above": self.reacquire_above,
                "ref_frames": self.ref_frames, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        check_calibration(data)
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)

    def logit_of(self, evidence: dict[str, float]) -> float:
        return self.bias + sum(w * evidence[f] for f, w in zip(self.features, self.weights))


_NUMBERS = ("bias", "uncertain_below", "lost_below", "reacquire_above")
_COUNTS = ("smooth", "lost_after", "ref_frames")


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_calibration(data: Any) -> None:
    """Raise :class:`SpecError` when ``data`` is not a valid calibration mapping (see :class:`Calibration`)."""
    if not isinstance(data, dict):
        raise SpecError(f"calibration must be a mapping, got {type(data).__name__}")
    known = set(Calibration.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"calibration has unknown keys {unknown}; known keys are {sorted(known)}")
    feats, weights = list(data.get("features", ())), list(data.get("weights", ()))
    if not feats or len(feats) != len(weights):
        raise SpecError(f"calibration needs as many weights as features, got {feats!r} and {weights!r}")
    bad = [f for f in feats if f not in FEATURES]
    if bad:
        raise SpecError(f"calibration names unknown features {bad}; known: {list(FEATURES)}")
    if not all(_num(w) for w in weights) or not all(_num(data[k]) for k in _NUMBERS if k in data):
        raise SpecError("calibration weights, bias and thresholds must be finite numbers")
    for key in _COUNTS:
        value = data.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"calibration {key} must be a positive integer, got {value!r}")
    low, mid, up = (data.get(k, d) for k, d in (("lost_below", .2), ("uncertain_below", .5),
                                                ("reacquire_above", .6)))
    if not 0.0 <= low <= mid <= 1.0 or not 0.0 <= up <= 1.0:
        raise SpecError(f"calibration thresholds must satisfy 0 <= lost_below ({low}) <= uncertain_below ({mid}) "
                        f"<= 1 and 0 <= reacquire_above ({up}) <= 1")


#: What a spec without a ``calibration`` gets: the raw peak score through one logistic curve fitted on the frames
#: of three NanoTrack-family models together (the bundled default and accurate students and the NanoTrack V2
#: teacher; dev-split train sequences and the pool's train rows, with synthetic disappearances).
DEFAULT = Calibration(features=("peak",), weights=(0.70,), bias=-1.74, lost_below=0.2, lost_after=3,
                      fitted_on="generic default: peak score only, fitted on three NanoTrack-family models")


def calibration_of(spec) -> Calibration:
    """The spec's calibration, or :data:`DEFAULT` when it has none (specs written before there was one)."""
    data = getattr(spec, "calibration", None)
    return Calibration.from_dict(data) if data else DEFAULT


# ------------------------------------------------------------------------------------------------ state machine
class Monitor:
    """One target's confidence history and state. ``observe`` turns a search's evidence into (confidence,
    state); ``candidate`` scores a re-acquisition candidate without changing anything."""

    def __init__(self, calibration: Calibration, lost_threshold: float = 0.0) -> None:
        self.cal = calibration
        self.lost_threshold = lost_threshold  # the spec's raw-score floor: below it the confidence is 0
        self.state = State.TRACKING
        self.low_run = 0
        self.lost_frames = 0
        self._peaks: list[float] = []
        self._logits: deque[float] = deque(maxlen=calibration.smooth)

    def complete(self, evidence: dict[str, float]) -> dict[str, float]:
        """``evidence`` with ``drop``: how far the peak logit is below its mean over the first updates."""
        ref = sum(self._peaks) / len(self._peaks) if self._peaks else evidence["peak"]
        return {**evidence, "drop": max(0.0, ref - evidence["peak"])}

    def candidate(self, evidence: dict[str, float]) -> float:
        """Confidence of one search on its own (no smoothing): for re-acquisition candidates."""
        if sigmoid(evidence["peak"]) < self.lost_threshold:
            return 0.0
        return sigmoid(self.cal.logit_of(self.complete(evidence)))

    def observe(self, evidence: dict[str, float], full: dict[str, float] | None = None) -> tuple[float, State]:
        """Confidence and state after one ordinary search (the target not LOST, or recovery off); ``full``:
        :meth:`complete` of ``evidence`` when the caller has it already."""
        full = self.complete(evidence) if full is None else full
        if len(self._peaks) < self.cal.ref_frames:
            self._peaks.append(evidence["peak"])
        return self.judge(full)

    def judge(self, full: dict[str, float]) -> tuple[float, State]:
        """Confidence and state from complete evidence (``drop`` included)."""
        self._logits.append(self.cal.logit_of(full))
        conf = sigmoid(sum(self._logits) / len(self._logits))
        if sigmoid(full["peak"]) < self.lost_threshold:
            conf = 0.0
        return conf, self._advance(conf)

    def _advance(self, conf: float) -> State:
        cal = self.cal
        if self.state is State.LOST:
            if conf >= cal.reacquire_above:
                return self.found()
            self.lost_frames += 1
            return self.state
        self.low_run = self.low_run + 1 if conf < cal.lost_below else 0
        if self.low_run >= cal.lost_after:
            self.state, self.lost_frames = State.LOST, 0
        else:
            self.state = State.UNCERTAIN if conf < cal.uncertain_below else State.TRACKING
        return self.state

    def still_lost(self) -> State:
        """A recovery search that found nothing good enough."""
        self.lost_frames += 1
        return self.state

    def found(self) -> State:
        """The target was re-acquired: back to TRACKING with a fresh smoothing window."""
        self.state, self.low_run, self.lost_frames = State.TRACKING, 0, 0
        self._logits.clear()
        return self.state


# ------------------------------------------------------------------------------------------------ recovery
@dataclass(frozen=True)
class Recovery:
    """What a tracker does while its target is LOST (the long-term mode); ``Recovery(enabled=False)`` tracks on
    as a short-term tracker does (the state is still reported).

    While LOST the tracker reports the last box it trusted (its last TRACKING box) and searches around it, the
    search region growing by ``growth`` per update up to ``max_factor`` times its normal side (the crop is
    resized to the network's input, so the target looks smaller), and around the network's best candidate of the
    previous update at the normal side, so a target that moved on is followed and seen at its usual scale (the
    same batched call). Every ``tiles_every`` LOST updates (0: never)
    it also searches the whole frame in tiles of the normal search side, all tiles in one batched network call
    (at most ``max_tiles``, the coarsest grid that covers the frame). A candidate whose confidence reaches the
    calibration's ``reacquire_above`` ends the LOST state.
    """

    enabled: bool = True
    growth: float = 1.25
    max_factor: float = 2.5
    tiles_every: int = 2
    max_tiles: int = 16

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise InputError(f"Recovery.enabled must be True or False, got {self.enabled!r}")
        if not (_num(self.growth) and self.growth >= 1.0 and _num(self.max_factor) and self.max_factor >= 1.0):
            raise InputError(f"Recovery growth and max_factor must be numbers >= 1, got {self.growth!r}, "
                             f"{self.max_factor!r}")
        for name in ("tiles_every", "max_tiles"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"Recovery.{name} must be a non-negative integer, got {value!r}")

    def factor(self, lost_frames: int) -> float:
        """Search-side multiplier on the ``lost_frames``-th LOST update (1 on the first)."""
        return min(self.max_factor, self.growth ** max(0, lost_frames))

    def tiles_now(self, lost_frames: int) -> bool:
        return self.tiles_every > 0 and self.max_tiles > 0 and lost_frames % self.tiles_every == 0


def tile_centres(frame_shape: tuple[int, ...], side: float,
                 max_tiles: int) -> tuple[list[tuple[float, float]], float]:
    """Centres and side of square tiles covering the frame (overlapping evenly): ``side`` px, or larger when more
    than ``max_tiles`` would be needed."""
    ih, iw = frame_shape[:2]
    side = max(float(side), 1.0)
    while True:
        nx, ny = max(1, math.ceil(iw / side)), max(1, math.ceil(ih / side))
        if nx * ny <= max_tiles:
            break
        side *= 1.25
    xs = np.linspace(side / 2, iw - side / 2, nx) if nx > 1 else np.array([iw / 2])
    ys = np.linspace(side / 2, ih - side / 2, ny) if ny > 1 else np.array([ih / 2])
    return [(float(x), float(y)) for y in ys for x in xs], side


# ------------------------------------------------------------------------------------------------ one target
Box = tuple[float, float, float, float]  # cx, cy, w, h in frame pixels


class Watch:
    """One target's lost-state bookkeeping: its :class:`Monitor`, the last box it trusted (its last TRACKING
    update, or the init box), the latest confidence and evidence, and what the :class:`Recovery` policy searches
    while it is LOST. The family's search produces the evidence; the session runs the searches."""

    def __init__(self, calibration: Calibration, recovery: Recovery, lost_threshold: float = 0.0) -> None:
        self.monitor = Monitor(calibration, lost_threshold)
        self.recovery = recovery
        self.trusted: Box | None = None
        self.lead: Box | None = None  # while LOST: where the network's best candidate was on the last update
        self.confidence = 1.0
        self.evidence: dict[str, float] = {}

    @property
    def state(self) -> State:
        return self.monitor.state

    def start(self, box: Box) -> None:
        self.trusted = box

    def recovering(self) -> bool:
        """True when this update should be a recovery search instead of an ordinary one."""
        return self.recovery.enabled and self.monitor.state is State.LOST

    def windows(self, box: Box, frame_shape: tuple[int, ...], side: float) -> list[tuple[float, float, float]]:
        """Search windows (cx, cy, side) of a recovery search around ``box`` (normal search side ``side``): the
        widened window, the normal one around the :attr:`lead` (when it is elsewhere), and the full-frame tiles
        when it is their turn."""
        k = self.monitor.lost_frames
        out = [(box[0], box[1], side * self.recovery.factor(k))]
        if self.lead is not None and self.lead[:2] != box[:2]:
            out.append((self.lead[0], self.lead[1], side))
        if self.recovery.tiles_now(k):
            centres, tile = tile_centres(frame_shape, side, self.recovery.max_tiles)
            out += [(x, y, tile) for x, y in centres]
        return out

    def searched(self, box: Box, evidence: dict[str, float]) -> Box:
        """After an ordinary search that moved the target to ``box``: confidence and state; returns the box the
        target holds (the last trusted box once it is LOST and recovery is on)."""
        self.evidence = self.monitor.complete(evidence)
        self.confidence, state = self.monitor.observe(evidence, self.evidence)
        if state is State.TRACKING:
            self.trusted = box
        elif state is State.LOST and self.recovery.enabled and self.trusted is not None:
            self.lead = box  # the search goes on around it too
            return self.trusted
        return box

    def recovered(self, candidates: list[tuple[dict[str, float], Box]]) -> Box | None:
        """After a recovery search: the best candidate (evidence, box) by its own confidence, its movement not
        held against it; the box to move to when it is good enough to re-acquire, else None (still LOST, and the
        candidate is the :attr:`lead` the next search looks around)."""
        scored = [(self.monitor.candidate({**ev, "motion": 0.0}), ev, box) for ev, box in candidates]
        conf, ev, box = max(scored, key=lambda c: c[0])
        self.evidence, self.confidence = self.monitor.complete({**ev, "motion": 0.0}), conf
        if conf < self.monitor.cal.reacquire_above:
            self.monitor.still_lost()
            self.lead = box
            return None
        self.monitor.found()
        self.trusted, self.lead = box, None
        return box
