"""Re-calibrating the confidence of an exported folder after conversion (FP16, INT8 and other runtimes move the
scores a little, so the calibration fitted on the checkpoint may no longer mean the same).

The exported graphs track sequences with absent stretches (:mod:`edgetrack.evaluation.disappear`): the
``--data`` dataset folders when there are some, else the dev split's train sequences and the pool's train rows in
the shared data folder, else generated sequences; each cut to :data:`MAX_FRAMES`. The logistic weights are
refitted on that evidence, pulled towards the source calibration (few frames must not undo a fit on many); the
features and thresholds stay. The result is written into the folder's files before the accuracy gate runs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError, EdgeTrackError

MAX_FRAMES = 120


def recalibration_sequences(data: tuple[Path, ...], shared: Path | None) -> tuple[tuple, str]:
    """Sequences with absent stretches to re-calibrate on, and where they come from."""
    from ..data import open_dataset
    from ..evaluation.disappear import fit_and_eval_sets, synthetic_part, with_disappearances

    seqs = []
    for folder in (p for p in data if Path(p).is_dir()):
        try:
            seqs += [s.head(MAX_FRAMES) for s in open_dataset(folder).sequences]
        except DataError:  # a folder of videos without boxes: nothing to label
            continue
    gone = tuple(with_disappearances(seqs))  # sequences too short for a disappearance are left out
    if gone:
        return gone, "--data: " + ", ".join(map(str, data))
    if shared is not None and (Path(shared) / "data" / "dev-sequences").is_dir():
        return fit_and_eval_sets(shared, MAX_FRAMES)["fit"].gone, f"{shared} (dev train split, pool train rows)"
    return synthetic_part().gone, "synthetic (generated sequences)"


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
