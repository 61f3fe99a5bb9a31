"""Choosing a model's decoding constants on tracking data: ``window_influence``, ``penalty_k`` and ``lr``, and the
search's motion prior (``motion_gain``, ``motion_smooth``).

The network decides where the target may be; these three constants decide how its candidates are chosen (how
strongly motion away from the last position is discouraged, how much a change of size or shape is penalised,
how fast the box size follows). They come with a teacher's published tracker and suit *its* score maps; a
student's maps are less sharp, so its best constants can differ. Settings are scored on one set of sequences
(the *tuning side*: training data) and the chosen one is checked on another that shares no video (the *check
side*), each sequence reported, so that a gain made of a few failures flipping shows as such.

numpy + the runtime only. Frames are decoded once per sequence and shared by every setting.
"""
from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..spec import DECODING_CONSTANTS
from .metrics import score_sequence
from .runner import track_sequence

NAMES = DECODING_CONSTANTS


@dataclass(frozen=True)
class DecodingGrid:
    """The values tried for each constant (every combination is scored)."""

    window_influence: tuple[float, ...] = (0.35, 0.42, 0.49, 0.56)
    penalty_k: tuple[float, ...] = (0.05, 0.1, 0.15, 0.22)
    lr: tuple[float, ...] = (0.25, 0.385, 0.5)
    motion_gain: tuple[float, ...] = (0.0,)
    motion_smooth: tuple[float, ...] = (0.0,)

    def __post_init__(self) -> None:
        for name in NAMES:
            values = getattr(self, name)
            if not values or not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values):
                raise InputError(f"DecodingGrid.{name} must be non-empty finite numbers >= 0, got {values!r}")
        if max(self.window_influence) > 1 or max(self.lr) > 1:
            raise InputError("window_influence and lr are fractions in [0, 1]")
        if max(self.motion_gain) > 2 or max(self.motion_smooth) >= 1:
            raise InputError("motion_gain is in [0, 2] and motion_smooth in [0, 1)")

    def settings(self) -> list[dict[str, float]]:
        return [dict(zip(NAMES, values)) for values in itertools.product(*(getattr(self, n) for n in NAMES))]


def key_of(setting: dict[str, float]) -> str:
    return json.dumps({n: float(setting[n]) for n in NAMES})


class CachedSequence:
    """A sequence whose frames are decoded once (shared by every setting tracked on it)."""

    def __init__(self, seq) -> None:
        self.name, self.gt, self.absent, self.init_box = seq.name, seq.gt, seq.absent, seq.init_box
        self._frames = [seq.frame(i) for i in range(len(seq))]

    def __len__(self) -> int:
        return len(self._frames)

    def frame(self, i: int) -> np.ndarray:
        return self._frames[i]


def score_settings(tracker, seqs: Iterable, settings: list[dict[str, float]],
                   progress: Callable[[str], None] | None = None) -> dict[str, dict[str, float]]:
    """``{setting key: {sequence: success AUC}}`` for every setting on every sequence (one tracker reused)."""
    out: dict[str, dict[str, float]] = {key_of(s): {} for s in settings}
    for seq in seqs:
        cached = CachedSequence(seq)
        for setting in settings:
            tracker.set_decoding(**setting)
            record = track_sequence(tracker, cached)
            out[key_of(setting)][seq.name] = float(score_sequence(record.boxes, seq.gt, seq.absent).success_auc)
        if progress:
            progress(seq.name)
    return out


def _mean(values: dict[str, float]) -> float:
    return float(np.mean(list(values.values()))) if values else math.nan


def tune(make_tracker: Callable[[], object], tune_seqs, check_seqs, grid: DecodingGrid = DecodingGrid(),
         progress: Callable[[str], None] | None = None) -> dict:
    """Score ``grid`` on ``tune_seqs``, pick the best mean AUC, and score it and the model's own constants on
    ``check_seqs`` (may be empty). Returns the report (``chosen`` is the setting to use)."""
    tracker = make_tracker()
    own = {n: float(getattr(tracker.spec, n)) for n in NAMES}
    settings = grid.settings()
    if key_of(own) not in {key_of(s) for s in settings}:
        settings.append(own)
    tuned = score_settings(tracker, tune_seqs, settings, progress)
    means = {k: _mean(v) for k, v in tuned.items()}
    best = max(means, key=means.get)
    changes = {s: tuned[best][s] - tuned[key_of(own)][s] for s in tuned[best]}
    compared = [own] if best == key_of(own) else [own, json.loads(best)]
    checked = score_settings(tracker, check_seqs, compared, progress) if check_seqs else {}
    marginal = {n: {str(v): _mean({k: m for k, m in means.items() if json.loads(k)[n] == v})
                    for v in getattr(grid, n)} for n in NAMES}
    return {
        "own": own, "chosen": json.loads(best),
        "tune_side": {"sequences": len(tuned[best]), "own_auc": means[key_of(own)], "chosen_auc": means[best],
                      "per_setting": means, "marginal": marginal,
                      "largest_changes": dict(sorted(changes.items(), key=lambda kv: -abs(kv[1]))[:5])},
        "check_side": {"own_auc": _mean(checked.get(key_of(own), {})), "chosen_auc": _mean(checked.get(best, {})),
                       "per_sequence": checked},
    }
