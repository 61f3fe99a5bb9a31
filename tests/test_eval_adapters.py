"""Adapters: edgetrack-style trackers inside got10k (PIL RGB in, boxes out) and behind pysot's interface."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgetrack.evaluation.adapters import PysotTracker, as_got10k, to_bgr
from edgetrack.evaluation.trackers import TrackerFactory


class Recorder:
    """Remembers the frames it saw; moves the box by (2, 1) each frame and reports a score."""

    def __init__(self):
        self.frames = []

    def init(self, frame, box):
        self.frames.append(frame)
        self.box = np.array(box, float)

    def update(self, frame):
        self.frames.append(frame)
        self.box += [2, 1, 0, 0]
        return type("Result", (), {"box": tuple(self.box), "score": 0.25, "latency_ms": 1.0})()


def test_got10k_adapter_feeds_bgr_frames_and_returns_boxes(tmp_path):
    base = pytest.importorskip("got10k.trackers", reason="got10k (edgetrack[dev]) is not installed")
    files = []
    for i in range(3):
        img = np.zeros((12, 16, 3), np.uint8)
        img[..., 2] = 255  # red in BGR
        files.append(str(tmp_path / f"{i:04d}.png"))
        cv2.imwrite(files[-1], img)
    inner = Recorder()
    tracker = as_got10k(inner, name="mine")
    assert isinstance(tracker, base.Tracker) and tracker.name == "mine"
    boxes, times = tracker.track(files, np.array([1.0, 2.0, 5.0, 6.0]))
    np.testing.assert_allclose(boxes, [[1, 2, 5, 6], [3, 3, 5, 6], [5, 4, 5, 6]])
    assert len(times) == 3
    for frame in inner.frames:
        assert frame.dtype == np.uint8 and frame.shape == (12, 16, 3)
        np.testing.assert_array_equal(frame[0, 0], [0, 0, 255])


def test_got10k_adapter_builds_from_a_factory():
    pytest.importorskip("got10k.trackers", reason="got10k (edgetrack[dev]) is not installed")
    tracker = as_got10k(TrackerFactory("identity"), name="id")
    tracker.init(np.zeros((8, 8, 3), np.uint8), [1, 1, 3, 3])
    np.testing.assert_array_equal(tracker.update(np.zeros((8, 8, 3), np.uint8)), [1, 1, 3, 3])


def test_pysot_adapter():
    tracker = PysotTracker(Recorder())
    frame = np.zeros((8, 8, 3), np.uint8)
    tracker.init(frame, [0, 0, 4, 4])
    out = tracker.track(frame)
    assert out == {"bbox": [2.0, 1.0, 4.0, 4.0], "best_score": 0.25}
    identity = PysotTracker(TrackerFactory("identity"))
    identity.init(frame, [1, 2, 3, 4])
    assert identity.track(frame)["bbox"] == [1.0, 2.0, 3.0, 4.0]


def test_to_bgr():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 200
    assert to_bgr(rgb)[0, 0].tolist() == [0, 0, 200] and to_bgr(rgb).flags.c_contiguous
    assert to_bgr(np.full((2, 2), 7, np.uint8)).shape == (2, 2, 3)
    assert to_bgr(np.zeros((2, 2, 4), np.uint8)).shape == (2, 2, 3)
    with pytest.raises(ValueError):
        to_bgr(np.zeros((2, 2, 5), np.uint8))


def test_evaluation_imports_stay_light():
    code = (
        "import sys, edgetrack.data, edgetrack.evaluation, edgetrack.evaluation.adapters, edgetrack.cli.bench\n"
        "print(*[m for m in ('got10k', 'torch', 'PIL', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == []
