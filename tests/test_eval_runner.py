"""The OPE runner: output formats it accepts, result files, timing, resume after a kill, failures, workers."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgetrack.data import Dataset, synthetic_sequence, write_dataset
from edgetrack.data import open_dataset as open_ds
from edgetrack.errors import InputError
from edgetrack.evaluation.results import box_path, meta_path, read_result_boxes, time_path
from edgetrack.evaluation.runner import run_ope, track_sequence
from edgetrack.evaluation.trackers import (
    IdentityTracker,
    Prediction,
    TrackerFactory,
    peer_factories,
    read_prediction,
)


class BoxObject:
    def __init__(self, box, score):
        self.box, self.score = box, score


class FakeTracker:
    """Moves the box one pixel right per frame; ``style`` picks what ``update`` returns."""

    def __init__(self, style: str = "object", fail_at: int | None = None, interrupt_on: str | None = None):
        self.style, self.fail_at, self.interrupt_on, self.n = style, fail_at, interrupt_on, 0

    def init(self, frame, box):
        assert frame.dtype == np.uint8 and frame.ndim == 3
        if self.interrupt_on is not None and frame.mean() == self.interrupt_on:
            raise KeyboardInterrupt
        self.box = list(box)

    def update(self, frame):
        self.n += 1
        if self.n == self.fail_at:
            raise RuntimeError("tracker exploded")
        self.box[0] += 1
        b = list(self.box)
        return {
            "object": BoxObject(b, 0.5),
            "tuple": tuple(b),
            "array": np.array(b),
            "cv": (True, tuple(b)),
            "lost": (False, (0, 0, 0, 0)),
            "dict": {"bbox": b, "best_score": 0.7},
        }[self.style]


def fake(style="object", name=None, **kw) -> TrackerFactory:
    return TrackerFactory("import", model=f"{__name__}:FakeTracker", name=name or f"fake-{style}",
                          kwargs=tuple(dict(style=style, **kw).items()))


@pytest.fixture(scope="module")
def memory_ds() -> Dataset:
    seqs = tuple(synthetic_sequence(s, n_frames=6, size=(64, 48), name=f"s{s}") for s in range(3))
    return Dataset("mem", seqs)


@pytest.mark.parametrize("style", ["object", "tuple", "array", "cv", "dict"])
def test_every_return_style_gives_the_same_boxes(memory_ds, style):
    seq = memory_ds[0]
    rec = track_sequence(FakeTracker(style), seq)
    expected = np.array(seq.init_box) + np.outer(np.arange(len(seq)), [1, 0, 0, 0])
    np.testing.assert_allclose(rec.boxes, expected)
    assert math.isnan(rec.update_ms[0]) and np.isfinite(rec.update_ms[1:]).all()
    assert rec.init_ms >= 0 and (rec.decode_ms >= 0).all()


def test_lost_target_keeps_the_previous_box(memory_ds):
    rec = track_sequence(FakeTracker("lost"), memory_ds[0])
    np.testing.assert_allclose(rec.boxes, np.tile(memory_ds[0].init_box, (len(memory_ds[0]), 1)))
    assert math.isnan(read_prediction({"bbox": [1, 2, 3, 4]}, (0, 0, 0, 0)).score)
    assert read_prediction(Prediction((1, 2, 3, 4), 0.3), (0, 0, 0, 0)).score == 0.3
    with pytest.raises(TypeError, match="expected an object with .box"):
        read_prediction("nonsense", (0, 0, 0, 0))


def test_result_files(memory_ds, tmp_path):
    outcomes = run_ope(memory_ds, [fake()], tmp_path, workers=0, progress=False)
    assert [o.status for o in outcomes] == ["done"] * 3
    seq = memory_ds[1]
    boxes = read_result_boxes(tmp_path, "fake-object", seq.name, len(seq))
    np.testing.assert_array_equal(boxes[0], seq.gt[0])
    assert box_path(tmp_path, "fake-object", seq.name).read_text().count(",") == 3 * len(seq)
    times = np.loadtxt(time_path(tmp_path, "fake-object", seq.name))
    meta = json.loads(meta_path(tmp_path, "fake-object", seq.name).read_text())
    assert len(times) == len(seq) and times[0] == pytest.approx(meta["init_ms"] / 1000, abs=1e-8)
    assert len(meta["update_ms"]) == len(seq) - 1 and len(meta["decode_ms"]) == len(seq)
    assert meta["scores"][1] == 0.5 and meta["peak_rss_mb"] > 0 and meta["rss_scope"] == "process"
    assert not list(tmp_path.rglob("*.tmp"))


def test_killed_run_resumes_without_losing_anything(memory_ds, tmp_path):
    stop = float(memory_ds[1].frame(0).mean())
    with pytest.raises(KeyboardInterrupt):
        run_ope(memory_ds, [fake(name="t", interrupt_on=stop)], tmp_path, workers=0, progress=False)
    assert box_path(tmp_path, "t", "s0").is_file() and not box_path(tmp_path, "t", "s1").exists()
    first = box_path(tmp_path, "t", "s0").stat().st_mtime_ns
    outcomes = run_ope(memory_ds, [fake(name="t")], tmp_path, workers=0, progress=False)
    assert {o.sequence: o.status for o in outcomes} == {"s0": "skipped", "s1": "done", "s2": "done"}
    assert box_path(tmp_path, "t", "s0").stat().st_mtime_ns == first
    box_path(tmp_path, "t", "s2").write_text("1,2,3,4\n")  # truncated: redone
    outcomes = run_ope(memory_ds, [fake(name="t")], tmp_path, workers=0, progress=False)
    assert {o.sequence: o.status for o in outcomes}["s2"] == "done"
    assert all(o.status == "skipped" for o in run_ope(memory_ds, [fake(name="t")], tmp_path, workers=0,
                                                      progress=False))


def test_failures_are_reported_and_do_not_stop_the_run(memory_ds, tmp_path):
    broken = TrackerFactory("import", model="no_such_module_xyz:Tracker", name="broken")
    outcomes = run_ope(memory_ds, [broken, fake(name="flaky", fail_at=2), fake()], tmp_path, workers=0,
                       progress=False)
    by = {(o.tracker, o.sequence): o for o in outcomes}
    assert by[("broken", "s0")].status == "failed" and "no_such_module_xyz" in by[("broken", "s0")].message
    assert by[("flaky", "s0")].status == "failed" and "tracker exploded" in by[("flaky", "s0")].message
    assert not box_path(tmp_path, "flaky", "s0").exists()
    assert all(by[("fake-object", s)].status == "done" for s in ("s0", "s1", "s2"))
    with pytest.raises(ValueError, match="unique"):
        run_ope(memory_ds, [fake(), fake()], tmp_path, workers=0, progress=False)


def test_max_frames(memory_ds, tmp_path):
    run_ope(memory_ds, [TrackerFactory("identity")], tmp_path, workers=0, max_frames=4, progress=False)
    assert len(np.loadtxt(box_path(tmp_path, "identity", "s0"), delimiter=",")) == 4


def test_worker_processes(tmp_path):
    ds = open_ds(write_dataset(tmp_path / "data", n_sequences=2, n_frames=5, size=(64, 48)))
    outcomes = run_ope(ds, [TrackerFactory("identity"), TrackerFactory("kcf")], tmp_path / "res", workers=2,
                       progress=False)
    assert [o.status for o in outcomes] == ["done"] * 4, outcomes
    meta = json.loads(meta_path(tmp_path / "res", "opencv-kcf", "synth_000").read_text())
    assert meta["rss_scope"] == "worker" and meta["peak_rss_mb"] > 10 and meta["threads"] == 1


def test_factories():
    assert [f.label for f in peer_factories("kcf, nano,none")] == ["opencv-kcf", "opencv-nano"]
    assert peer_factories("none") == [] and peer_factories(None) == []
    with pytest.raises(InputError, match="unknown peer"):
        peer_factories("kcf,foo")
    with pytest.raises(InputError, match="unknown tracker kind"):
        TrackerFactory("foo")
    assert TrackerFactory("edgetrack").label == "edgetrack"
    assert TrackerFactory("edgetrack", model="x/nt_v2.onnx").label == "edgetrack-nt_v2"
    assert isinstance(TrackerFactory("identity").build(), IdentityTracker)
    assert TrackerFactory("nano", model="/nonexistent").model_files() == []
