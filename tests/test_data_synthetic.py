"""Synthetic sequences: deterministic, well-formed, events visible in the ground truth, DTB70 layout on disk."""
from __future__ import annotations

import numpy as np
import pytest

from edgetrack.data import EVENTS, make_sequence, open_dataset, synthetic_sequence, write_dataset
from edgetrack.data.synthetic import attribute_flags, events_for


def test_deterministic_and_well_formed():
    frames, gt = make_sequence(5, n_frames=30)
    frames2, gt2 = make_sequence(5, n_frames=30)
    assert len(frames) == 30 and gt.shape == (30, 4) and gt.dtype == np.float64
    assert all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for f in frames)
    assert all(np.array_equal(a, b) for a, b in zip(frames, frames2))
    np.testing.assert_array_equal(gt, gt2)
    other, _ = make_sequence(6, n_frames=30)
    assert not np.array_equal(frames[0], other[0])
    x, y, w, h = gt[0]
    assert x >= 0 and y >= 0 and x + w <= 320 and y + h <= 240 and w > 4 and h > 4


def test_events_show_in_the_ground_truth():
    _, gt = make_sequence(1, n_frames=60, events=("out_of_view",))
    assert np.isnan(gt).any(axis=1).any() and not np.isnan(gt[0]).any()
    _, still = make_sequence(1, n_frames=60, events=())
    assert not np.isnan(still).any()
    # no scale change without "scale"
    np.testing.assert_allclose(still[:, 2:], np.broadcast_to(still[0, 2:], (60, 2)), atol=1)
    _, scaled = make_sequence(1, n_frames=60, events=("scale",))
    assert scaled[:, 2].max() / scaled[:, 2].min() > 1.3
    with pytest.raises(ValueError, match="unknown events"):
        make_sequence(0, events=("rain",))


def test_small_sizes_and_default_length():
    frames, gt = make_sequence(2, n_frames=60)
    assert len(frames) == 60 and gt.shape == (60, 4) and frames[0].dtype == np.uint8
    frames, gt = make_sequence(3, n_frames=2, size=(64, 48), events=EVENTS)
    assert frames[0].shape == (48, 64, 3) and not np.isnan(gt[0]).any()


def test_in_memory_sequence_has_attributes():
    seq = synthetic_sequence(4, n_frames=10, events=("blur", "shake"))
    assert len(seq) == 10 and seq.frame(3).shape == (240, 320, 3)
    assert seq.attributes["MB"] and seq.attributes["FCM"] and not seq.attributes["OCC"]
    assert attribute_flags(("occlusion", "out_of_view"))["OV"]
    assert events_for(0, 1) == events_for(0, 1) and events_for(0, 1)


def test_write_dataset_layout_and_resume(tmp_path):
    root = write_dataset(tmp_path / "synth", n_sequences=3, seed=1, n_frames=8, size=(64, 48))
    ds = open_dataset(root)
    assert ds.format == "dtb70" and ds.names == ["synth_000", "synth_001", "synth_002"]
    assert all(len(s) == 8 for s in ds) and ds["synth_000"].attributes
    assert (root / "synth_000" / "img" / "0001.jpg").is_file()
    stamp = (root / "synth_001" / "img" / "0001.jpg").stat().st_mtime_ns
    (root / "synth_002" / "groundtruth_rect.txt").unlink()  # as if the first run was killed here
    write_dataset(root, n_sequences=3, seed=1, n_frames=8, size=(64, 48))
    assert (root / "synth_001" / "img" / "0001.jpg").stat().st_mtime_ns == stamp
    assert len(open_dataset(root)["synth_002"]) == 8
    write_dataset(root, n_sequences=3, seed=1, n_frames=5, size=(64, 48))
    assert all(len(s) == 5 for s in open_dataset(root))
    assert not list(root.rglob("*.tmp"))
