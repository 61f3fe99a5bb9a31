"""Decoding of a centre head (the ``vit`` family: OSTrack / OpenCV VitTrack), numpy only; the family's search
(:class:`edgetrack.runtime.target.CentreSearch`) cuts the crops and calls it.

The search graph gives three maps over the S x S search grid: ``score`` (1 channel, a probability), ``size``
(w, h as fractions of the search crop) and ``offset`` (x, y of the centre within its cell, in cells). The
search crop is a square ``instance_size / exemplar_size`` times the template crop, whose side is
``template_factor * sqrt(w * h)``; both are centred on the previous position.

Constants from the spec, as OpenCV's ``TrackerVit`` uses them with the zoo weights:

* the score map is multiplied by ``(1 - window_influence) + window_influence * hann``, where ``hann`` is the
  outer product of a Hann window with no zero ends (``0.5 - 0.5 cos(2 pi (i + 1) / (S + 1))``); the best cell
  after that is the answer and its windowed score the confidence (``window_influence`` 1: OpenCV's product);
* the new size is ``(1 - lr) * old + lr * predicted`` (``lr`` 1: OpenCV's, no smoothing);
* below a windowed score of ``lost_threshold`` the target does not move (OpenCV's ``update`` returns false and
  keeps its box).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geometry import clip_state, context_size
from ..spec import TrackerSpec


def hann_window(size: int) -> np.ndarray:
    """(size * size,) outer product of a Hann window without its zero end points (OpenCV's centred ``hann1d``)."""
    hann = np.hanning(size + 2)[1:-1]
    return np.outer(hann, hann).reshape(-1)


def template_side(spec: TrackerSpec, w: float, h: float) -> float:
    """Side of the template crop around a ``w x h`` target: ``template_factor * sqrt(w h)`` when the spec sets
    one, else the context rule of the Siamese families."""
    if spec.template_factor > 0:
        return spec.template_factor * math.sqrt(w * h)
    return context_size(w, h, spec.context_amount)


def search_side(spec: TrackerSpec, w: float, h: float) -> float:
    """Side of the search crop: the template side scaled like the crop sizes."""
    return template_side(spec, w, h) * spec.instance_size / spec.exemplar_size


@dataclass(frozen=True)
class CentreChoice:
    """The chosen cell's box as fractions of the search crop (centre from its top-left corner) and its windowed
    score."""

    cx: float
    cy: float
    w: float
    h: float
    score: float


def decode(score: np.ndarray, size: np.ndarray, offset: np.ndarray, window: np.ndarray,
           window_influence: float) -> CentreChoice:
    """One target's maps (1|2, S, S) -> the best cell after the window, its box and its windowed score."""
    s = score.shape[-1]
    weighted = score.astype(np.float64).reshape(-1) * ((1.0 - window_influence) + window_influence * window)
    best = int(np.argmax(weighted))
    row, col = divmod(best, s)
    sizes = size.reshape(2, -1)[:, best]
    offsets = offset.reshape(2, -1)[:, best]
    return CentreChoice(float((col + offsets[0]) / s), float((row + offsets[1]) / s), float(sizes[0]),
                        float(sizes[1]), float(weighted[best]))


def next_state(cx: float, cy: float, w: float, h: float, side: float, choice: CentreChoice, spec: TrackerSpec,
               frame_shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    """The state after ``choice`` on a search crop of ``side`` pixels centred on (cx, cy); unchanged below the
    spec's ``lost_threshold``."""
    if choice.score < spec.lost_threshold:
        return cx, cy, w, h
    lr = spec.lr
    new_w = w * (1 - lr) + choice.w * side * lr
    new_h = h * (1 - lr) + choice.h * side * lr
    return clip_state(cx + (choice.cx - 0.5) * side, cy + (choice.cy - 0.5) * side, new_w, new_h, frame_shape)
