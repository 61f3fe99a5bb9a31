"""Re-acquisition while LOST follows the network's best candidate as well as the last trusted box: a target that
reappears away from where it was lost is found again; the short-term mode is untouched."""
from __future__ import annotations

import cv2
import numpy as np

from edgetrack import Recovery, Tracker
from edgetrack.runtime.confidence import DEFAULT, State, Watch


def _jump_clip(jump: float = 100.0, n_before: int = 10, n_noise: int = 8, n_after: int = 12):
    """A target on a calm textured background, pure noise frames (the tracker goes LOST), then the target again,
    ``jump`` px to the right of where it was and moving on; frames and boxes (NaN on the noise frames)."""
    from edgetrack.data.synthetic import _paste, _texture

    rng = np.random.default_rng(0)
    background = _texture(rng, 360, 480, contrast=0.3)
    sprite = _texture(rng, 40, 40, contrast=1.6)
    cv2.rectangle(sprite, (0, 0), (39, 39), (40, 200, 240), 3)
    frames, gt = [], []
    for i in range(n_before + n_noise + n_after):
        if n_before <= i < n_before + n_noise:
            frames.append(np.clip(rng.normal(114, 20, background.shape), 0, 255).astype(np.uint8))
            gt.append((np.nan,) * 4)
            continue
        x = 100 if i < n_before else 100 + jump + 3 * (i - n_before - n_noise)
        frame = background.copy()
        _paste(frame, sprite, int(x), 160)
        frames.append(frame)
        gt.append((x, 160.0, 40.0, 40.0))
    return frames, np.array(gt), range(n_before, n_before + n_noise)


def _iou(a, b) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_windows_follow_the_best_candidate():
    watch = Watch(DEFAULT, Recovery(tiles_every=0))
    watch.start((100.0, 100.0, 20.0, 20.0))
    assert watch.windows((100.0, 100.0, 20.0, 20.0), (240, 320), 80.0) == [(100.0, 100.0, 80.0)]
    watch.lead = (180.0, 90.0, 20.0, 20.0)
    assert watch.windows((100.0, 100.0, 20.0, 20.0), (240, 320), 80.0) == [(100.0, 100.0, 80.0),
                                                                           (180.0, 90.0, 80.0)]
    assert watch.recovered([({"peak": 8.0, "psr": 20.0, "entropy": 0.2, "motion": 0.0, "size_change": 0.0},
                              (181.0, 91.0, 20.0, 20.0))]) is not None
    assert watch.lead is None and watch.trusted == (181.0, 91.0, 20.0, 20.0)


def test_a_target_that_jumped_while_lost_is_reacquired():
    frames, gt, noise = _jump_clip()
    for recovery in (Recovery(tiles_every=0), Recovery()):  # without the full-frame tiles too
        tracker = Tracker("fast", recovery=recovery)
        tracker.init(frames[0], gt[0])
        results = [tracker.update(f) for f in frames[1:]]
        lost = [r for r in results[noise.start:] if r.state is State.LOST]
        assert lost and all(r.box == lost[0].box for r in lost)  # the last trusted box is what LOST reports
        assert results[-1].state is State.TRACKING and _iou(results[-1].box, gt[-1]) > 0.5


def test_short_term_never_searches_recovery_windows(monkeypatch):
    def refuse(*args):
        raise AssertionError("a recovery search in the short-term mode")

    monkeypatch.setattr(Watch, "windows", refuse)
    frames, gt, noise = _jump_clip()
    tracker = Tracker("default", recovery=Recovery(enabled=False))
    tracker.init(frames[0], gt[0])
    states = [tracker.update(f).state for f in frames[1:]]
    assert State.LOST in states and tracker._target.watch.lead is None
