"""Turning head outputs into candidate boxes, and choosing among them (numpy only).

All candidate boxes are ``(cx, cy, w, h)`` in search-crop pixels relative to the crop centre, as in pysot.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..spec import TrackerSpec


@dataclass(frozen=True)
class Candidates:
    boxes: np.ndarray  # (4, N): cx, cy, w, h
    scores: np.ndarray  # (N,) in [0, 1]


def cosine_window(size: int) -> np.ndarray:
    """Flattened outer product of Hanning windows (pysot's ``np.outer(hanning, hanning)``)."""
    hanning = np.hanning(size)
    return np.outer(hanning, hanning).reshape(-1)


def grid_points(score_size: int, stride: int, origin: float | None = None) -> np.ndarray:
    """(N, 2) x/y of score-map cells relative to the crop centre: ``origin + i*stride``; ``origin`` defaults to
    pysot's ``-(S//2)*stride`` (a spec gives its own: :attr:`~edgetrack.spec.TrackerSpec.origin`)."""
    ori = -(score_size // 2) * stride if origin is None else origin
    coords = ori + stride * np.arange(score_size, dtype=np.float64)
    xx, yy = np.meshgrid(coords, coords)
    return np.stack([xx.reshape(-1), yy.reshape(-1)], axis=1)


def make_anchors(spec: TrackerSpec) -> np.ndarray:
    """(N, 4) anchors cx, cy, w, h for an RPN head, ordered anchor-major like pysot's ``generate_anchor``."""
    size = spec.stride * spec.stride
    shapes = []
    for ratio in spec.anchor_ratios:
        ws = int(np.sqrt(size / ratio))
        hs = int(ws * ratio)
        for scale in spec.anchor_scales:
            shapes.append((ws * scale, hs * scale))
    points = grid_points(spec.score_size, spec.stride, spec.origin)
    anchors = [np.column_stack([points, np.tile([w, h], (len(points), 1))]) for w, h in shapes]
    return np.concatenate(anchors, axis=0)


def foreground_prob(cls: np.ndarray, activation: str) -> np.ndarray:
    """Foreground probability per cell from logits ``(K*C, S, S)`` (C=2 softmax halves, or C=1 sigmoid)."""
    flat = cls.reshape(cls.shape[0], -1)
    if activation == "sigmoid":
        logit = flat.astype(np.float64).reshape(-1)
    else:
        half = flat.shape[0] // 2
        logit = np.subtract(flat[half:], flat[:half], dtype=np.float64).reshape(-1)
    # 0.5 * (1 + tanh(0.5 * logit)): the logistic function without overflow, in place (a few calls per update)
    logit *= 0.5
    np.tanh(logit, out=logit)
    logit += 1.0
    logit *= 0.5
    return logit


def decode_anchor_free(cls: np.ndarray, reg: np.ndarray, points: np.ndarray, activation: str) -> Candidates:
    """NanoTrack/SiamBAN: ``reg`` holds (left, top, right, bottom) distances in crop pixels from each point."""
    d = reg.astype(np.float64).reshape(4, -1)
    p = points.T  # (2, N): x, y
    lo, hi = p - d[:2], p + d[2:]  # (x1, y1), (x2, y2)
    boxes = np.concatenate([(lo + hi) / 2, hi - lo])
    return Candidates(boxes, foreground_prob(cls, activation))


def decode_anchor_based(cls: np.ndarray, reg: np.ndarray, anchors: np.ndarray, activation: str) -> Candidates:
    """SiamRPN: ``reg`` holds (dx, dy, dw, dh) per anchor, channel-major ``[dx*K, dy*K, dw*K, dh*K]``."""
    d = reg.astype(np.float64).reshape(4, -1)
    a = anchors
    boxes = np.stack([d[0] * a[:, 2] + a[:, 0], d[1] * a[:, 3] + a[:, 1],
                      np.exp(np.clip(d[2], -10, 10)) * a[:, 2], np.exp(np.clip(d[3], -10, 10)) * a[:, 3]])
    return Candidates(boxes, foreground_prob(cls, activation))


def _change(r: np.ndarray) -> np.ndarray:
    return np.maximum(r, 1.0 / r)


def _sz(w, h):
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def scale_ratio_penalty(boxes: np.ndarray, target_w: float, target_h: float, penalty_k: float) -> np.ndarray:
    """pysot's penalty for changes of scale and aspect ratio (target size given in crop pixels)."""
    w = np.maximum(boxes[2], 1e-6)
    h = np.maximum(boxes[3], 1e-6)
    target_w, target_h = float(target_w), float(target_h)
    pad = (target_w + target_h) * 0.5
    s_c = _sz(w, h)
    s_c /= math.sqrt((target_w + pad) * (target_h + pad))
    s_c = _change(s_c)
    r_c = np.divide(target_w / target_h, np.divide(w, h, out=w), out=w)
    r_c = _change(r_c)
    r_c *= s_c
    r_c -= 1.0
    r_c *= -penalty_k  # -(r_c * s_c - 1) * k, in place
    return np.exp(r_c, out=r_c)


@dataclass(frozen=True)
class Choice:
    box: np.ndarray  # cx, cy, w, h in crop pixels
    score: float
    lr: float


def choose(cands: Candidates, target_w: float, target_h: float, window: np.ndarray,
           spec: TrackerSpec) -> Choice:
    """Penalise, mix with the cosine window, take the best, and compute the size-smoothing rate."""
    penalty = scale_ratio_penalty(cands.boxes, target_w, target_h, spec.penalty_k)
    pscore = penalty * cands.scores
    pscore *= 1.0 - spec.window_influence
    pscore += window * spec.window_influence
    best = int(pscore.argmax())
    score = float(cands.scores[best])
    return Choice(cands.boxes[:, best].copy(), score, float(penalty[best] * score * spec.lr))


@dataclass(frozen=True)
class ScaleChoice:
    displacement: np.ndarray  # dx, dy in search-crop pixels
    scale_index: int
    score: float


def choose_siamfc(responses: np.ndarray, spec: TrackerSpec, window: np.ndarray) -> ScaleChoice:
    """SiamFC: upsample each scale's response, penalise scale changes, mix in the window, locate the peak."""
    n, r = responses.shape[0], responses.shape[-1]
    up = r * spec.response_up
    maps = np.stack([cv2.resize(responses[i].reshape(r, r).astype(np.float32), (up, up),
                                interpolation=cv2.INTER_CUBIC) for i in range(n)])
    peaks = maps.reshape(n, -1).max(axis=1).astype(np.float64)
    centre = n // 2
    peaks[np.arange(n) != centre] *= spec.scale_penalty
    best = int(np.argmax(peaks))
    resp = maps[best].astype(np.float64)
    raw_peak = float(resp.max())
    resp -= resp.min()
    resp /= resp.sum() + 1e-16
    resp = (1 - spec.window_influence) * resp + spec.window_influence * window.reshape(up, up)
    loc = np.array(np.unravel_index(int(resp.argmax()), resp.shape), dtype=np.float64)
    disp_resp = loc[::-1] - (up - 1) / 2.0
    disp_crop = disp_resp * spec.stride / spec.response_up
    return ScaleChoice(disp_crop, best, float(0.5 * (1.0 + np.tanh(0.5 * raw_peak))))
