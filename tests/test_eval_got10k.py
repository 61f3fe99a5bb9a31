"""Cross-check: got10k's own ExperimentDTB70.report on files written by our runner gives our numbers."""
from __future__ import annotations

import numpy as np
import pytest

from edgetrack.data import open_dataset, write_dataset
from edgetrack.evaluation import TrackerFactory, build_report, run_ope

TOL = 1e-9


class Jitter:
    """Follows the ground truth badly: random offsets and scale, and a NaN box now and then."""

    def init(self, frame, box):
        self.box = np.array(box, float)
        self.rng = np.random.default_rng(int(frame.sum()) % 1000)
        self.n = 0

    def update(self, frame):
        self.n += 1
        if self.n % 7 == 0:
            return (np.nan,) * 4
        noise = self.rng.normal(0, [6, 6, 4, 4])
        return tuple(self.box + noise)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    got10k = pytest.importorskip("got10k.experiments", reason="got10k (edgetrack[dev]) is not installed")
    import matplotlib

    matplotlib.use("Agg")
    tmp = tmp_path_factory.mktemp("xcheck")
    root = write_dataset(tmp / "DTB70", n_sequences=4, seed=2, n_frames=24, size=(160, 120))
    ds = open_dataset(root, "dtb70")
    assert any(np.isnan(s.gt).any() for s in ds), "the check must cover absent-target rows"
    trackers = [TrackerFactory("identity"), TrackerFactory("kcf"),
                TrackerFactory("import", model=f"{__name__}:Jitter", name="jitter")]
    outcomes = run_ope(ds, trackers, tmp / "results" / "DTB70", workers=0, progress=False)
    assert all(o.status == "done" for o in outcomes), outcomes
    names = [t.label for t in trackers]
    exp = got10k.ExperimentDTB70(str(root), result_dir=str(tmp / "results"), report_dir=str(tmp / "reports"))
    theirs = exp.report(names)
    ours = build_report(ds, tmp / "results" / "DTB70", names)
    return names, theirs, ours


def test_overall_numbers_match_got10k(experiment):
    names, theirs, ours = experiment
    for name in names:
        g, o = theirs[name]["overall"], ours["trackers"][name]["overall"]
        assert abs(g["success_score"] - o["success_auc"]) <= TOL
        assert abs(g["precision_score"] - o["precision_20"]) <= TOL
        assert abs(g["success_rate"] - o["success_rate_50"]) <= TOL
        assert abs(g["speed_fps"] - o["speed_fps_got10k"]) <= 1e-9 * max(1.0, g["speed_fps"])
        np.testing.assert_allclose(o["success_curve"], g["success_curve"], rtol=0, atol=TOL)
        np.testing.assert_allclose(o["precision_curve"], g["precision_curve"], rtol=0, atol=TOL)


def test_sequence_numbers_match_got10k(experiment):
    names, theirs, ours = experiment
    for name in names:
        assert set(theirs[name]["seq_wise"]) == set(ours["trackers"][name]["sequences"])
        for seq, g in theirs[name]["seq_wise"].items():
            o = ours["trackers"][name]["sequences"][seq]
            assert abs(g["success_score"] - o["success_auc"]) <= TOL
            assert abs(g["precision_score"] - o["precision_20"]) <= TOL
            assert abs(g["success_rate"] - o["success_rate_50"]) <= TOL


def test_the_check_is_not_trivial(experiment):
    names, theirs, _ = experiment
    scores = [theirs[n]["overall"]["success_score"] for n in names]
    assert len(set(np.round(scores, 6))) == len(scores) and 0 < min(scores) and max(scores) < 1
