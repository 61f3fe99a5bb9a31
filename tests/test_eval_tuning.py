"""Choosing decoding constants: the grid, the choice, the check side, writing them into a model, the command."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgetrack.errors import InputError


def test_grid_settings_and_validation():
    from edgetrack.evaluation.tuning import DecodingGrid

    grid = DecodingGrid((0.3, 0.5), (0.1,), (0.2, 0.4))
    still = {"motion_gain": 0.0, "motion_smooth": 0.0}  # the motion prior is off unless asked for
    assert grid.settings() == [{"window_influence": w, "penalty_k": 0.1, "lr": lr, **still}
                               for w in (0.3, 0.5) for lr in (0.2, 0.4)]
    assert len(DecodingGrid((0.3,), (0.1,), (0.2,), (0.0, 0.5, 1.0), (0.0, 0.5)).settings()) == 6
    for bad in (dict(window_influence=()), dict(lr=(1.5,)), dict(penalty_k=(float("nan"),)),
                dict(motion_gain=(2.5,)), dict(motion_smooth=(1.0,))):
        with pytest.raises(InputError):
            DecodingGrid(**bad)


def test_tune_chooses_the_best_mean_and_checks_it(tiny_dataset):
    from edgetrack.data import open_dataset
    from edgetrack.evaluation.calibrate import tracker_factory
    from edgetrack.evaluation.tuning import NAMES, DecodingGrid, key_of, tune
    from edgetrack.runtime.model_files import locate

    seqs = list(open_dataset(tiny_dataset))
    report = tune(tracker_factory("default"), seqs[:1], seqs[1:], DecodingGrid((0.0, 0.9), (0.15,), (0.385,)))
    per = report["tune_side"]["per_setting"]
    assert len(per) == 3  # the two of the grid and the model's own
    assert key_of(report["chosen"]) == max(per, key=per.get)
    assert report["tune_side"]["chosen_auc"] == pytest.approx(max(per.values()))
    spec = locate("default").spec
    assert report["own"] == {n: getattr(spec, n) for n in NAMES}
    checked = report["check_side"]["per_sequence"]
    assert set(checked) == {key_of(report["own"]), key_of(report["chosen"])}
    assert all(set(v) == {seqs[1].name} for v in checked.values())
    assert 0.0 <= report["check_side"]["chosen_auc"] <= 1.0


def test_set_decoding_changes_the_boxes(clip):
    from edgetrack import MultiTracker, Tracker
    from edgetrack.errors import InputError, SpecError

    frames, gt = clip
    boxes = []
    for window in (0.0, 1.0):
        tracker = Tracker()
        tracker.set_decoding(window_influence=window, penalty_k=0.0, lr=1.0)
        assert (tracker.spec.window_influence, tracker.spec.penalty_k, tracker.spec.lr) == (window, 0.0, 1.0)
        tracker.init(frames[0], gt[0])
        boxes.append([tracker.update(f).box for f in frames[1:]])
    assert not np.allclose(boxes[0], boxes[1])  # window 1.0 pins the centre; 0.0 follows the scores
    with MultiTracker() as multi:
        multi.set_decoding(window_influence=1.0, penalty_k=0.0, lr=1.0)
        i = multi.add(frames[0], gt[0])
        assert [multi.update(f)[i].box for f in frames[1:]] == boxes[1]
        with pytest.raises(InputError, match="instance_size"):
            multi.set_decoding(instance_size=239)
        with pytest.raises(SpecError, match="window_influence"):
            multi.set_decoding(window_influence=2.0)
        assert multi.spec.window_influence == 1.0  # a refused change leaves the constants as they were


def test_command_writes_the_chosen_constants(tmp_path, tiny_dataset, capsys):
    from edgetrack.cli.main import main
    from edgetrack.runtime.model_files import bundled_dir, locate

    model = tmp_path / "model"
    shutil.copytree(bundled_dir("default"), model)
    before = locate(model).spec
    args = ["tune", str(model), "--data", str(tiny_dataset), "--window", "0.2", "--penalty-k", "0.3", "--lr", "0.6"]
    assert main(args + ["--dry-run"]) == 0
    assert locate(model).spec == before
    report_path = tmp_path / "report.json"
    assert main(args + ["--report", str(report_path)]) == 0
    chosen = json.loads(report_path.read_text())["chosen"]
    after = locate(model).spec
    assert {k: getattr(after, k) for k in chosen} == chosen
    assert after.with_(**{k: getattr(before, k) for k in chosen}) == before  # nothing else changed
    assert "calibrate" in capsys.readouterr().out


def test_command_errors(tmp_path, capsys):
    from edgetrack.cli.main import main

    assert main(["tune", "default", "--data", str(tmp_path / "missing")]) != 0
    assert "not a dataset folder" in capsys.readouterr().err
