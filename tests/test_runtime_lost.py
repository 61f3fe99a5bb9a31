"""The lost state: calibration in the spec, the state machine, recovery, fitting, storing, and the tracker's
states on frames where the target is gone."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import shared_path

from edgetrack.errors import InputError, SpecError, UngatedModelWarning
from edgetrack.runtime.confidence import (
    DEFAULT,
    FEATURES,
    Calibration,
    Monitor,
    Recovery,
    State,
    calibration_of,
    map_evidence,
    tile_centres,
)
from edgetrack.spec import TrackerSpec


def _evidence(peak: float) -> dict[str, float]:
    return {"peak": peak, "psr": 5.0, "entropy": 0.8, "motion": 0.1, "size_change": 0.0}


def test_spec_carries_a_calibration_and_old_specs_get_the_default():
    spec = TrackerSpec("nanotrack")
    assert spec.calibration == {} and calibration_of(spec) == DEFAULT
    cal = Calibration(features=("peak", "psr"), weights=(1.0, 0.2), bias=-1.0, lost_after=2)
    with_cal = spec.with_(calibration=cal.to_dict())
    again = TrackerSpec.from_json(with_cal.to_json())
    assert again == with_cal and calibration_of(again) == cal
    old = {k: v for k, v in spec.to_dict().items() if k != "calibration"}  # a spec written before the field
    assert calibration_of(TrackerSpec.from_dict(old)) == DEFAULT


@pytest.mark.parametrize("bad", [
    {"features": ["peak", "nope"], "weights": [1, 1]},
    {"features": ["peak"], "weights": [1, 2]},
    {"features": ["peak"], "weights": [float("nan")]},
    {"features": ["peak"], "weights": [1], "lost_below": 0.7, "uncertain_below": 0.5},
    {"features": ["peak"], "weights": [1], "lost_after": 0},
    {"features": ["peak"], "weights": [1], "colour": "red"},
])
def test_a_bad_calibration_is_a_spec_error(bad):
    with pytest.raises(SpecError):
        TrackerSpec("nanotrack", calibration=bad)


def test_state_machine_goes_uncertain_then_lost_and_back():
    cal = Calibration(features=("peak",), weights=(1.0,), bias=0.0, uncertain_below=0.5, lost_below=0.2,
                      lost_after=3, reacquire_above=0.7)
    mon = Monitor(cal)
    assert mon.observe(_evidence(3.0))[1] is State.TRACKING
    assert mon.observe(_evidence(-0.5))[1] is State.UNCERTAIN
    states = [mon.observe(_evidence(-3.0))[1] for _ in range(3)]
    assert states == [State.UNCERTAIN, State.UNCERTAIN, State.LOST]
    conf, state = mon.observe(_evidence(0.5))  # 0.62: not enough to come back
    assert state is State.LOST and 0.6 < conf < 0.7
    assert mon.observe(_evidence(2.0))[1] is State.TRACKING


def test_raw_score_floor_of_old_specs_still_counts():
    mon = Monitor(DEFAULT, lost_threshold=0.3)
    conf, _ = mon.observe(_evidence(np.log(0.2 / 0.8)))
    assert conf == 0.0


def test_evidence_of_a_sharp_peak_and_of_a_flat_map():
    sharp = np.full((16, 16), 0.01)
    sharp[8, 8] = 0.95
    flat = np.full((16, 16), 0.3)
    a, b = map_evidence(sharp, 0.95, (0.0, 0.0), 1.0), map_evidence(flat, 0.3, (0.5, 0.0), 1.2)
    assert a["psr"] > 10 > b["psr"] and a["entropy"] < b["entropy"] <= 1.0
    assert a["peak"] > 0 > b["peak"] and b["motion"] == pytest.approx(0.5)
    assert b["size_change"] == pytest.approx(np.log(1.2))


def test_recovery_is_validated_and_grows_the_search():
    rec = Recovery(growth=1.5, max_factor=2.0, tiles_every=3)
    assert [rec.factor(k) for k in range(4)] == [1.0, 1.5, 2.0, 2.0]
    assert rec.tiles_now(0) and not rec.tiles_now(1) and rec.tiles_now(3)
    for bad in (dict(growth=0.5), dict(enabled="yes"), dict(tiles_every=-1), dict(max_tiles=True)):
        with pytest.raises(InputError):
            Recovery(**bad)


def test_tiles_cover_the_frame_within_the_budget():
    centres, side = tile_centres((360, 640), 200.0, 16)
    assert len(centres) <= 16 and side >= 200
    xs, ys = zip(*centres)
    assert min(xs) - side / 2 <= 0 and max(xs) + side / 2 >= 640
    assert min(ys) - side / 2 <= 0 and max(ys) + side / 2 >= 360
    few, side2 = tile_centres((360, 640), 50.0, 4)
    assert len(few) <= 4 and side2 > 50


def test_logistic_fit_recovers_known_weights():
    from edgetrack.evaluation.calibration_fit import fit_logistic

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2)) * [2.0, 1.0] + [1.0, 0.0]
    p = 1 / (1 + np.exp(-(0.5 + 1.5 * x[:, 0] - 1.0 * x[:, 1])))
    y = (rng.random(4000) < p).astype(float)
    w = fit_logistic(x, y, l2=1e-4)
    assert np.allclose(w, [0.5, 1.5, -1.0], atol=0.2)


def test_disappearances_blank_the_target_and_mark_it_absent():
    from edgetrack.data.synthetic import synthetic_sequence
    from edgetrack.evaluation.disappear import Disappearing, cover, with_disappearances

    seqs = [synthetic_sequence(i, n_frames=40) for i in range(2)]
    gone = with_disappearances(seqs)
    assert all(isinstance(g, Disappearing) and g.absent.sum() >= 8 for g in gone)
    start, stop, kind = gone[0].stretches[0]
    assert np.isnan(gone[0].gt[start:stop]).all() and gone[0].absent[start:stop].all()
    assert (gone[0].absent >= seqs[0].absent).all() and gone[0].absent.sum() > seqs[0].absent.sum()
    assert gone[1].stretches[0][2] == "noise"
    assert not np.array_equal(gone[1].frame(gone[1].stretches[0][0]), seqs[1].frame(gone[1].stretches[0][0]))
    frame = seqs[0].frame(1)
    x, y, w, h = (int(v) for v in seqs[0].gt[1])
    covered = cover(frame, seqs[0].gt[1])
    assert not np.array_equal(covered[y:y + h, x:x + w], frame[y:y + h, x:x + w])


def test_calibration_is_written_into_every_file_of_a_model(tmp_path):
    from edgetrack.runtime.model_files import locate
    from edgetrack.runtime.spec_files import write_calibration

    folder = tmp_path / "default"
    shutil.copytree(locate("default").root, folder)
    cal = Calibration(features=("peak", "psr"), weights=(0.9, 0.1), bias=-0.5, fitted_on="test")
    written = write_calibration(folder, cal.to_dict())
    assert {p.name for p in written} == {"template.onnx", "search.onnx", "model.safetensors"}
    assert calibration_of(locate(folder).spec) == cal
    assert calibration_of(locate(folder / "model.safetensors").spec) == cal
    import onnxruntime as ort  # the graphs still load and run

    sess = ort.InferenceSession(str(folder / "template.onnx"))
    assert sess.run(None, {"z": np.zeros((1, 3, 127, 127), np.float32)})[0].shape[0] == 1


def test_state_metrics_count_flags_and_false_lost():
    from edgetrack.evaluation.calibrate import state_metrics

    states = np.array(["tracking", "uncertain", "lost", "lost", "tracking"])
    absent = np.array([False, True, True, False, False])
    m = state_metrics(states, absent, ~absent)
    assert m["absent_recall"] == 1.0 and m["absent_lost"] == 0.5
    assert m["absent_precision"] == pytest.approx(2 / 3) and m["visible_lost"] == pytest.approx(1 / 3)


def test_features_names_are_stable():
    assert FEATURES == ("peak", "psr", "entropy", "motion", "size_change", "drop")


def test_shared_fit_and_eval_sets_share_no_video():
    shared = shared_path("data", "dev-sequences").parents[1]
    from edgetrack.evaluation.disappear import fit_and_eval_sets
    from edgetrack.training.split import video_key

    parts = fit_and_eval_sets(shared, max_frames=40)
    fit = {video_key(getattr(s, "base", s).name) for s in parts["fit"].real}
    held = {video_key(s.name) for s in parts["eval"].real}
    # one name, two videos: VOT2015's car1 (dev train, a colour road clip) and OTB-100's Car1 (val-videos, a
    # grayscale clip from a car); the shared README lists no overlap between val-videos and anything else
    assert fit and held and not (fit & held) - {"car1"}
    assert any("~x" in s.name for s in parts["fit"].real)  # fast-motion copies on the fitting side only
    assert not any("~x" in s.name for s in parts["eval"].real)
    assert all(g.absent.any() for g in parts["eval"].gone)


# ------------------------------------------------------------------------------------------------ the tracker
def _clip_with_noise(n_before: int = 12, n_noise: int = 10, n_after: int = 10):
    """A still generated scene (the target does not move) with noise frames in the middle, and its boxes."""
    from edgetrack.data.synthetic import make_sequence

    first, gt = make_sequence(5, n_frames=2, size=(320, 240), events=())
    n = n_before + n_noise + n_after
    rng = np.random.default_rng(0)
    frames = [first[0]] * n
    for i in range(n_before, n_before + n_noise):
        frames[i] = np.clip(rng.normal(114, 20, first[0].shape), 0, 255).astype(np.uint8)
    return frames, np.repeat(np.asarray(gt[:1], dtype=float), n, axis=0), range(n_before, n_before + n_noise)


def test_bundled_model_goes_lost_on_noise_holds_its_box_and_comes_back():
    from edgetrack import Tracker

    frames, gt, noise = _clip_with_noise()
    tracker = Tracker("default", recovery=Recovery())  # the bundled spec has the long-term mode off by default
    tracker.init(frames[0], gt[0])
    results = [tracker.update(f) for f in frames[1:]]
    for r in results:
        assert r.lost == (r.state is State.LOST) and 0.0 <= r.confidence <= 1.0
        assert set(r.features) == set(FEATURES)
    assert results[noise.start - 2].state is State.TRACKING
    during = [results[i - 1] for i in noise]
    assert during[-1].state is State.LOST
    lost = [r for r in during if r.state is State.LOST]
    assert all(r.box == lost[0].box for r in lost)  # the last trusted box, held
    assert results[-1].state is State.TRACKING  # re-acquired after the noise


def test_recovery_off_still_reports_states_but_keeps_following():
    from edgetrack import Tracker

    frames, gt, noise = _clip_with_noise()
    tracker = Tracker("default", recovery=Recovery(enabled=False))
    tracker.init(frames[0], gt[0])
    results = [tracker.update(f) for f in frames[1:]]
    during = [results[i - 1] for i in noise]
    assert any(r.state is not State.TRACKING for r in during)
    assert len({r.box for r in during}) > 1


def test_a_lost_update_is_one_batched_search_call():
    from edgetrack import Tracker

    frames, gt, noise = _clip_with_noise()
    tracker = Tracker("default", recovery=Recovery(tiles_every=1, max_tiles=6))
    tracker.init(frames[0], gt[0])
    for f in frames[1:noise.stop - 2]:
        tracker.update(f)
    assert tracker.update(frames[noise.stop - 2]).state is State.LOST
    backend, calls = tracker.backend, []
    run = backend.run_search
    backend.run_search = lambda x, zfs: calls.append(len(x)) or run(x, zfs)
    tracker.update(frames[noise.stop - 1])
    assert len(calls) == 1 and 2 <= calls[0] <= 8  # the widened window, the best candidate's and the tiles


def test_recovery_must_be_a_recovery():
    from edgetrack import Tracker

    with pytest.raises(InputError):
        Tracker("default", recovery={"enabled": False})


def test_several_targets_each_get_a_state():
    from edgetrack import MultiTracker

    frames, gt, noise = _clip_with_noise()
    with MultiTracker("default") as mt:
        a = mt.add(frames[0], gt[0])
        b = mt.add(frames[0], gt[0] + [5, 5, 0, 0])
        for f in frames[1:noise.stop]:
            out = mt.update(f)
        assert set(out) == {a, b} and all(r.state is State.LOST for r in out.values())
    with MultiTracker("default", recovery=Recovery(enabled=False)) as mt:
        mt.add(frames[0], gt[0])
        boxes = {r.box for f in frames[1:noise.stop] for r in mt.update(f).values()}
        assert len(boxes) > 1  # short-term: keeps following


def test_export_keeps_the_calibration_of_each_exported_folder(tiny_checkpoint, tmp_path):
    pytest.importorskip("onnx")
    import json

    from edgetrack.export.cli import main as export_main
    from edgetrack.runtime.model_files import locate

    out = tmp_path / "onnx"
    code = export_main([str(tiny_checkpoint), "--format", "onnx", "--val-frames", "6", "--max-drop", "1",
                        "--out", str(out), "--no-progress"])
    assert code == 0
    report = json.loads((out / "export.json").read_text())
    done = report["confidence_calibration"]["onnx-fp32"]
    assert done["status"] == "kept"  # no calibration in the source, no real data: none in the export either
    assert calibration_of(locate(out).spec) == DEFAULT and locate(out).spec.calibration == {}


def test_calibrate_command_fits_and_writes_a_model(tiny_onnx, tmp_path, capsys):
    shared = shared_path("data", "dev-sequences").parents[1]
    from edgetrack.cli.main import main
    from edgetrack.runtime.model_files import locate

    model = tmp_path / "tiny"
    shutil.copytree(tiny_onnx, model)
    code = main(["calibrate", str(model), "--shared", str(shared), "--max-frames", "30", "--cache", "none",
                 "--report", str(tmp_path / "r.json")])
    assert code == 0, capsys.readouterr().err
    cal = calibration_of(locate(model).spec)
    assert cal.fitted_on.startswith("edgetrack calibrate") and "absent flagged" in capsys.readouterr().out


def test_calibrate_command_needs_data(tiny_onnx, monkeypatch, capsys):
    from edgetrack.cli.main import main

    monkeypatch.delenv("EDGETRACK_SHARED", raising=False)
    assert main(["calibrate", str(tiny_onnx)]) == 2
    assert "--shared" in capsys.readouterr().err


def test_static_batch_graphs_recover_without_tiles(tiny_checkpoint, tmp_path, caplog):
    pytest.importorskip("onnx")
    from conftest import mark_gated

    from edgetrack import Tracker
    from edgetrack.export import export_onnx
    from edgetrack.models.io import load_checkpoint

    folder = tmp_path / "static"
    export_onnx(load_checkpoint(tiny_checkpoint), folder, dynamic_batch=False)
    mark_gated(folder)
    frames, gt, noise = _clip_with_noise()
    tracker = Tracker(folder, recovery=Recovery(tiles_every=1))
    tracker.init(frames[0], gt[0])
    states = [tracker.update(f).state for f in frames[1:]]
    assert State.LOST in states  # an untrained network: LOST soon, and its recovery searches still run
    assert "static batch" in caplog.text


def test_motion_prior_leads_the_search_and_stops_while_lost(tmp_path):
    """``motion_gain``: the search crop is centred ahead of the target by its averaged velocity; a LOST target
    has no motion to follow (its velocity is forgotten), and the same clip with the prior off is unchanged."""
    from edgetrack import Tracker
    from edgetrack.runtime.model_files import default_model_dir
    from edgetrack.runtime.spec_files import write_spec
    from edgetrack.runtime.target import AnchorFreeSearch, TargetState

    spec = TrackerSpec(family="nanotrack", motion_gain=1.0, motion_smooth=0.5)
    search = AnchorFreeSearch(spec)
    st = TargetState(100.0, 80.0, 40.0, 40.0, (0.0, 0.0, 0.0), [], (240, 320), velocity=(6.0, -4.0))
    search.crops(np.zeros((240, 320, 3), np.uint8), st)
    assert st.centre == (106.0, 76.0)
    cls = np.zeros((1, 2, 16, 16), np.float32)
    cls[0, 1, 8, 8] = 20.0  # the centre cell (offset 0) wins
    half = 20.0 * search._scale_z(st)
    reg = np.full((1, 4, 16, 16), half, np.float32)
    search.step([cls, reg], st, (240, 320))
    assert (st.cx, st.cy) == pytest.approx((106.0, 76.0))
    assert st.velocity == pytest.approx((0.5 * 6 + 0.5 * 6, 0.5 * -4 + 0.5 * -4))
    st.velocity = (0.0, 0.0)
    search.crops(np.zeros((240, 320, 3), np.uint8), st)
    assert st.centre == (st.cx, st.cy)
    with pytest.raises(SpecError, match="motion_gain"):
        TrackerSpec(family="siamfc", motion_gain=0.5, score_size=17, stride=8, scale_num=3)

    folder = tmp_path / "moving"
    shutil.copytree(default_model_dir(), folder, ignore=shutil.ignore_patterns("*.safetensors"))
    write_spec(folder, motion_gain=0.75, motion_smooth=0.5)
    frames, gt, noise = _clip_with_noise()
    with pytest.warns(UngatedModelWarning):  # a copied folder without its gate report
        tracker = Tracker(folder, allow_ungated=True)
    tracker.init(frames[0], gt[0])
    states = []
    for f in frames[1:]:
        states.append(tracker.update(f).state)
        if states[-1] is State.LOST:
            assert tracker._target.velocity == (0.0, 0.0)
    assert State.LOST in states and states[-1] is State.TRACKING
