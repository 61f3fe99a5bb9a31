"""Calibrating a model's confidence end to end: collect on the fitting sequences, fit, measure on held-out ones.

``calibrate_model`` is what ``edgetrack calibrate`` runs. Fitting data: the dev split's train sequences and the
pool's train rows (with boxes), each also with synthetic disappearances; held-out: dev val + the pool's val rows
(no video in both). The held-out figures replay the fitted state machine on a short-term run (recovery off); the
long-term mode is measured by ``benchmarks/lost_state.py``.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np

from ..runtime.confidence import Calibration, calibration_of
from .calibration_fit import Frames, collect, fit_calibration, replay
from .disappear import Part, fit_and_eval_sets


def state_metrics(states: np.ndarray, absent: np.ndarray, on_target: np.ndarray) -> dict[str, float | int]:
    """Absent-frame detection and false LOST from per-frame states ("tracking"/"uncertain"/"lost").

    ``absent_recall``: share of absent frames flagged (LOST or UNCERTAIN); ``absent_precision``: share of flagged
    frames that are absent; ``absent_lost``: share of absent frames LOST; ``visible_lost``: share of visible frames
    LOST; ``on_target_lost``: share of visible frames with the box on the target (IoU >= 0.1) that are LOST."""
    states, absent, on_target = np.asarray(states), np.asarray(absent, bool), np.asarray(on_target, bool)
    flagged = states != "tracking"
    lost = states == "lost"

    def share(mask, of):
        return float(mask[of].mean()) if of.any() else float("nan")

    return {"frames": int(len(states)), "absent": int(absent.sum()),
            "absent_recall": share(flagged, absent), "absent_precision": share(absent, flagged),
            "absent_lost": share(lost, absent), "visible_lost": share(lost, ~absent),
            "on_target_lost": share(lost, on_target)}


def metrics_by_source(frames: Frames, states: np.ndarray) -> dict[str, dict]:
    """:func:`state_metrics` overall and per source (``otb``, ``uav123``, ``vot``, ``pool-otb``...)."""
    sources = frames.source
    out = {"overall": state_metrics(states, frames.absent, frames.label)}
    for src in sorted(set(sources)):
        keep = sources == src
        out[src] = state_metrics(states[keep], frames.absent[keep], frames.label[keep])
    return out


def model_key(model, backend: str) -> str:
    """Cache key of a model's evidence: its spec without the calibration (which the evidence does not depend
    on), where it is and the backend."""
    from ..runtime.model_files import locate

    files = locate(model)
    text = files.spec.with_(calibration={}).to_json() + str(Path(files.root).resolve()) + backend
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tracker_factory(model, backend: str = "auto"):
    """A one-thread tracker with recovery off (each update one ordinary search), gate warnings silenced."""
    from ..errors import UngatedModelWarning
    from ..runtime.confidence import Recovery
    from ..runtime.tracker import Tracker

    def make():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UngatedModelWarning)
            return Tracker(model, backend=backend, threads=1, allow_ungated=True, recovery=Recovery(enabled=False))

    return make


def collect_part(make, part: Part, cache: Path | None, progress: bool) -> Frames:
    """Evidence on a part's real sequences and on their copies with disappearances."""
    out = []
    for kind in ("real", "gone"):
        folder = None if cache is None else cache / f"{part.name}-{kind}"
        out.append(collect(make, getattr(part, kind), folder, progress, f"{part.name} {kind}"))
    return Frames.concat(out)


def calibrate_model(model, shared: str | Path, cache: Path | None = None, backend: str = "auto",
                    progress: bool = True, max_frames: int | None = None) -> tuple[Calibration, dict]:
    """Fit ``model``'s calibration on the fitting sequences under ``shared``; report it and its held-out figures
    next to those of the calibration the model had before (same frames)."""
    parts = fit_and_eval_sets(shared, max_frames)
    make = tracker_factory(model, backend)
    if cache is not None:
        cache = Path(cache) / model_key(model, backend)
    fit = collect_part(make, parts["fit"], cache, progress)
    names = sorted({str(g).split("~")[0] for g in fit.group})
    cal, summary = fit_calibration(fit, f"edgetrack calibrate: {len(names)} sequences (dev train split, pool train "
                                        f"rows), {len(fit)} updates, {int(fit.absent.sum())} absent")
    held = collect_part(make, parts["eval"], cache, progress)
    from ..runtime.model_files import locate

    before = calibration_of(locate(model).spec)
    report = {"calibration": cal.to_dict(), "fit": summary,
              "held_out": metrics_by_source(held, replay(cal, held)),
              "held_out_before": metrics_by_source(held, replay(before, held))}
    return cal, report
