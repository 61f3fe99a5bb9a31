"""The confidence calibration of an exported folder: kept as the source model had it, re-fitted only where the
conversion measurably moved the scores and the user gave real footage to fit on.

A conversion copies the spec, calibration included, into the exported files. :func:`score_shift` then measures
whether the exported graphs still mean the same to that calibration: on the gate's parity crops it runs the FP32
reference and the exported graphs, decodes each search as the tracker does, and compares the calibrated
confidences. Within :data:`SHIFT_TOLERANCE` (the mean absolute difference) the calibration is kept unchanged;
FP32 conversions sit orders of magnitude below it. Beyond it (INT8, sometimes FP16), the folder is re-fitted
(:func:`recalibrate`) on the ``--data`` datasets with boxes, each cut to :data:`MAX_FRAMES` and given absent
stretches (:mod:`edgetrack.evaluation.disappear`), the weights pulled towards the source calibration, when they
hold at least :data:`MIN_UPDATES` frames. Without such data the calibration is kept as it came and the report
says the scores moved: generated sequences may check
parity but never fit a calibration, and a source model without a calibration stays without one.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, EdgeTrackError

MAX_FRAMES = 120
#: Fewest updates a re-fit may rest on (the bundled default's calibration rests on 12,132). On one sequence
#: (about 150 updates) a re-fitted INT8 default agreed with the bundled model's states on 76-83% of the frames of
#: some clips where the source calibration, kept, agreed on all of them.
MIN_UPDATES = 1000
#: Largest mean |confidence(exported) - confidence(FP32 reference)| over the parity crops at which the source
#: calibration is taken to mean the same on the exported graphs. The bundled default measured 1e-8 (OpenVINO FP32),
#: 5e-5 (OpenVINO FP16), 0.06 (OpenVINO INT8) and 0.15 (ONNX INT8 QDQ) on 8 pairs of two dev sequences, INT8
#: calibrated on 32 pairs of the same sequences.
SHIFT_TOLERANCE = 0.01


@dataclass(frozen=True)
class ScoreShift:
    """How far the exported graphs' calibrated confidence moved from the FP32 reference's on the same crops."""

    pairs: int
    mean: float  # mean |confidence difference|
    worst: float  # largest |confidence difference|
    peak_mean: float  # mean |raw score difference| of the chosen box
    tolerance: float = SHIFT_TOLERANCE

    @property
    def moved(self) -> bool:
        return self.mean > self.tolerance

    def describe(self) -> str:
        side = ">" if self.moved else "<="
        return (f"mean |confidence change| {self.mean:.2g} {side} {self.tolerance:g} on {self.pairs} parity crops "
                f"(largest {self.worst:.2g})")


def _probe(spec, runner, z: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated confidence and raw score of each parity pair, decoded as an ordinary update of a target whose
    template crop is ``z[i]`` and whose search crop is ``x[i]`` (centred on it, at its usual scale)."""
    from ..runtime.confidence import Monitor, calibration_of, score_evidence
    from ..runtime.target import TargetState, batch_templates, search_for

    search, cal = search_for(spec), calibration_of(spec)
    n, side = search.crops_per_target, 4.0 * spec.instance_size
    size = spec.exemplar_size / (1.0 + 2.0 * spec.context_amount)  # a square target filling the template crop
    conf, raw = [], []
    for i in range(len(z)):
        zfs = list(runner.run_template(z[i:i + 1]))
        outs = runner.run_search(np.repeat(x[i:i + 1], n, axis=0), batch_templates([zfs], n))
        st = TargetState(side / 2, side / 2, size, size, (0.0, 0.0, 0.0), zfs, (int(side), int(side)))
        score = float(search.step([np.asarray(o, np.float32) for o in outs], st, st.shape))
        conf.append(Monitor(cal, spec.lost_threshold).candidate(st.evidence or score_evidence(score)))
        raw.append(score)
    return np.asarray(conf), np.asarray(raw)


def score_shift(spec, reference, runner, z: np.ndarray, x: np.ndarray,
                tolerance: float = SHIFT_TOLERANCE) -> ScoreShift:
    """:class:`ScoreShift` of ``runner`` (the exported graphs) against ``reference`` (the FP32 ONNX graphs) on
    the parity inputs ``z``, ``x``, both judged by ``spec``'s calibration."""
    ref_conf, ref_raw = _probe(spec, reference, z, x)
    conf, raw = _probe(spec, runner, z, x)
    diff = np.abs(conf - ref_conf)
    return ScoreShift(len(z), float(diff.mean()), float(diff.max()), float(np.abs(raw - ref_raw).mean()),
                      tolerance)


def recalibration_sequences(data: tuple[Path, ...]) -> tuple[tuple, str]:
    """Sequences with absent stretches to re-fit on, from the ``--data`` dataset folders (videos without boxes
    and sequences too short for a disappearance are left out), and where they come from; ``((), "")`` when
    there are none. Nothing else is ever fitted on: no shared folder, no generated sequences."""
    from ..data import open_dataset
    from ..evaluation.disappear import with_disappearances

    seqs = []
    for folder in (p for p in data if Path(p).is_dir()):
        try:
            seqs += [s.head(MAX_FRAMES) for s in open_dataset(folder).sequences]
        except DataError:  # a folder of videos without boxes: nothing to label
            continue
    gone = tuple(with_disappearances(seqs))
    return (gone, "--data: " + ", ".join(map(str, data))) if gone else ((), "")


def keep_or_refit(folder: Path, backend: str, shift: ScoreShift | None, seqs: tuple, source: str,
                  progress: bool = False, min_updates: int = MIN_UPDATES) -> dict:
    """What happens to the calibration of the exported ``folder`` (for ``export.json``): kept unchanged when its
    scores did not move (``shift`` None: the FP32 reference itself), or moved with too little real data to fit
    on (fewer than ``min_updates`` frames in ``seqs``); re-fitted on ``seqs`` otherwise."""
    from ..runtime.model_files import locate

    had = bool(locate(folder).spec.calibration)
    what = "the source model's calibration" if had else "no calibration (the source has none)"
    info = {"source_calibration": had, "score_shift": None if shift is None else asdict(shift)}
    if shift is None or not shift.moved:
        why = "the FP32 reference" if shift is None else shift.describe()
        return {"status": "kept", "message": f"{what}, unchanged: {why}", **info}
    frames = sum(len(s) for s in seqs)
    if frames < min_updates:
        have = f"--data has {frames} frames with boxes to fit on, fewer than {min_updates}" if seqs else \
            "no --data with boxes to fit on"
        return {"status": "kept", "message": f"{what}, unchanged although the scores moved ({shift.describe()}); "
                                             f"not re-fitted: {have} (real footage of several sequences)", **info}
    return {**recalibrate(folder, backend, seqs, source, progress), **info}


def recalibrate(folder: Path, backend: str, seqs: tuple, source: str, progress: bool = False) -> dict:
    """Refit the calibration of the exported ``folder`` on ``seqs`` and store it there; returns what changed
    (held-in log loss before and after, frames) for ``export.json``."""
    from ..evaluation.calibrate import tracker_factory
    from ..evaluation.calibration_fit import collect, columns, fit_calibration, log_loss
    from ..runtime.confidence import calibration_of
    from ..runtime.model_files import locate
    from ..runtime.spec_files import write_calibration

    before = calibration_of(locate(folder).spec)
    try:
        frames = collect(tracker_factory(folder, backend), seqs, None, progress, "re-calibrate")
    except EdgeTrackError as exc:  # a format the runtime cannot run on its own: keep the source calibration
        return {"status": "kept", "message": f"not re-calibrated ({exc})"}
    after, _ = fit_calibration(frames, f"edgetrack-export re-calibration on {source}: {len(frames)} updates",
                               features=before.features, prior=before)
    write_calibration(folder, after.to_dict())
    x, y = columns(frames, before.features), frames.label.astype(float)

    def loss(cal) -> float:
        return log_loss(np.array([cal.bias, *cal.weights]), x, y)

    return {"status": "refitted", "data": source, "frames": len(frames), "absent": int(frames.absent.sum()),
            "log_loss_before": loss(before), "log_loss_after": loss(after), "calibration": after.to_dict()}
