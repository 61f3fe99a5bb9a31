"""MultiTracker on several CPU threads: one single-thread session per thread, the targets split between them;
the results are those of one session."""
from __future__ import annotations

import numpy as np
import pytest

from edgetrack import MultiTracker
from edgetrack.runtime import multi
from edgetrack.runtime.multi import _shares


def test_shares_are_contiguous_even_and_never_empty():
    assert _shares(list(range(8)), 2) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert _shares(list(range(5)), 2) == [[0, 1], [2, 3, 4]] or _shares(list(range(5)), 2) == [[0, 1, 2], [3, 4]]
    assert _shares([1], 4) == [[1]] and _shares([], 3) == [[]]
    assert sum(_shares(list(range(7)), 3), []) == list(range(7))


def test_two_threads_split_the_targets_and_agree_with_one(tiny_onnx, clip, monkeypatch):
    monkeypatch.setattr(multi, "check_threads", lambda n: n)  # two sessions even on a one-CPU machine
    frames, gt = clip
    boxes = [gt[0], gt[0] + [8, 4, 0, 0], gt[0] + [-6, 6, 0, 0]]
    with MultiTracker(tiny_onnx, threads=1) as one, MultiTracker(tiny_onnx, threads=2) as two:
        assert not one._workers and len(two._workers) == 1
        for mt in (one, two):
            for box in boxes:
                mt.add(frames[0], box)
        calls = []
        for i, session in enumerate((two._session, *two._workers)):
            run = session.backend.run_search
            session.backend.run_search = lambda x, zfs, run=run, i=i: calls.append(i) or run(x, zfs)
        assert two.warmup(3) > 0
        for frame in frames[1:]:
            a, b = one.update(frame), two.update(frame)
            assert list(a) == list(b)
            for k in a:
                assert np.abs(np.subtract(a[k].box, b[k].box)).max() < 1e-3 and a[k].state is b[k].state
        assert sorted(calls[-2:]) == [0, 1]  # each session searched its share in one call
        two.set_decoding(window_influence=0.3)
        assert all(s.spec.window_influence == 0.3 for s in (two._session, *two._workers))
    with pytest.raises(Exception, match="closed"):
        two.update(frames[0])
