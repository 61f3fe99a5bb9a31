"""The one held-out set (edgetrack.data.heldout), paired comparisons and the adoption rule (evaluation.paired),
and the training side's aerial weighting."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import shared_path
from test_data_videos import H, W, boxes, write_boxes, write_clip, write_manifest

from edgetrack.data.heldout import PARTS, held_out_set, split_names
from edgetrack.errors import DataError
from edgetrack.evaluation.paired import AdoptionRule, adopt, group_means, paired, seed_families, seed_family


def write_dev_sequence(root, name, n=6):
    img = root / name / "img"
    img.mkdir(parents=True)
    import cv2

    for i in range(n):
        frame = np.full((H, W, 3), 30 * i % 240, np.uint8)
        cv2.imwrite(str(img / f"{i + 1:04d}.jpg"), frame)
    (root / name / "groundtruth_rect.txt").write_text("".join(f"{10 + i},10,20,20\n" for i in range(n)))


@pytest.fixture
def fake_shared(tmp_path):
    """A shared folder with two dev-val sequences, one dev-train one, a pool (one val row scorable, one not) and
    val-videos (one aerial, one ground)."""
    dev = tmp_path / "data" / "dev-sequences"
    for name in ("otb_Bird2", "uav123_10fps_boat1", "otb_Biker"):
        write_dev_sequence(dev, name)
    pool = tmp_path / "data" / "train-videos"
    pool.mkdir(parents=True)
    for name in ("otb_boy", "davis_x", "otb_train"):
        write_clip(pool / f"{name}.avi")
    write_boxes(pool / "otb_boy.txt", boxes(12))
    write_boxes(pool / "otb_train.txt", boxes(12))
    write_manifest(pool, [("otb_boy", "otb_boy.avi", 12, W, H, "yes", "no", "OTB boy", "val"),
                          ("davis_x", "davis_x.avi", 12, W, H, "no", "no", "DAVIS x", "val"),
                          ("otb_train", "otb_train.avi", 12, W, H, "yes", "no", "OTB t", "train")])
    val = tmp_path / "data" / "val-videos"
    val.mkdir(parents=True)
    for name in ("dtb70_BMX3", "otb_Toy"):
        write_clip(val / f"{name}.avi")
        write_boxes(val / f"{name}.txt", boxes(12))
    write_manifest(val, [("dtb70_BMX3", "dtb70_BMX3.avi", 12, W, H, "yes", "yes", "DTB70 BMX3", "val"),
                         ("otb_Toy", "otb_Toy.avi", 12, W, H, "yes", "no", "OTB Toy", "val")])
    return tmp_path


def test_parts_sources_and_aerial(fake_shared):
    held = held_out_set(fake_shared)
    assert held.names == ["otb_Bird2", "uav123_10fps_boat1", "otb_boy", "dtb70_BMX3", "otb_Toy"]
    assert [held.part[n] for n in held.names] == ["dev-val", "dev-val", "pool-val", "val-videos", "val-videos"]
    assert held.source["dtb70_BMX3"] == "DTB70" and held.source["uav123_10fps_boat1"] == "UAV123"
    assert {n for n in held.names if held.aerial[n]} == {"uav123_10fps_boat1", "dtb70_BMX3"}
    assert "otb_Biker" not in held.names and "otb_train" not in held.names  # training side never in it
    assert held.not_scored["davis_x"] == "no ground truth (frames only)"
    assert held.not_scored["vot_bag"].startswith("not in ")  # a dev val sequence the folder lacks is listed
    assert held.groupings()["view"]["dtb70_BMX3"] == "aerial"
    only = held.select(["val-videos"])
    assert only.names == ["dtb70_BMX3", "otb_Toy"] and set(only.part.values()) == {"val-videos"}
    cut = held_out_set(fake_shared, parts=["val-videos"], max_frames=5)
    assert [len(s) for s in cut.dataset] == [5, 5]


def test_missing_parts_and_bad_arguments(fake_shared, tmp_path, monkeypatch):
    shutil.rmtree(fake_shared / "data" / "val-videos")
    assert set(held_out_set(fake_shared).part.values()) == {"dev-val", "pool-val"}
    with pytest.raises(DataError, match="unknown held-out part"):
        held_out_set(fake_shared, parts=["test"])
    with pytest.raises(DataError, match="no held-out sequence"):
        held_out_set(fake_shared, parts=["val-videos"])
    with pytest.raises(DataError, match="does not exist"):
        held_out_set(tmp_path / "nowhere")
    monkeypatch.delenv("EDGETRACK_SHARED", raising=False)
    with pytest.raises(DataError, match="EDGETRACK_SHARED"):
        held_out_set()
    with pytest.raises(DataError, match="no split named"):
        split_names("nope")


def test_the_shared_held_out_set():
    shared = shared_path("data", "val-videos").parents[1]
    held = held_out_set(shared)
    counts = {p: sum(held.part[n] == p for n in held.names) for p in PARTS}
    assert counts == {"dev-val": 8, "pool-val": 2, "val-videos": 17}
    assert sum(held.aerial.values()) == 10
    assert {"DTB70", "UAVDT", "UAV123", "OTB", "VOT"} <= set(held.source.values())
    assert set(split_names("dev", "val")) == {n for n in held.names if held.part[n] == "dev-val"}


def test_paired_figures():
    ref = {"a": 0.5, "b": 0.6, "c": 0.7, "d": None}
    cand = {"a": 0.6, "b": 0.5, "c": 0.72, "d": 0.9}
    p = paired(cand, ref)
    assert p.n == 3 and p.median_diff == pytest.approx(0.02) and p.mean_diff == pytest.approx(0.02 / 3)
    assert (p.below, p.above) == (1, 1)
    assert paired(cand, ref, names=["a"]).as_dict()["mean_diff"] == pytest.approx(0.1)
    assert paired({}, ref).median_diff is None
    assert group_means(cand, {"a": "x", "b": "x", "c": "y", "d": "y"}) == pytest.approx({"x": 0.55, "y": 0.81})


def test_seed_families():
    assert seed_family("fast255-s2") == ("fast255", 2) and seed_family("default") is None
    assert seed_families(["a-s0", "a-s1", "b-s0", "teacher"]) == {"a": ["a-s0", "a-s1"]}


def test_adoption_rule():
    current = {f"q{i}": 0.5 for i in range(10)}
    aerial = {f"q{i}": i < 4 for i in range(10)}
    better = {f"s{k}": {n: 0.53 for n in current} for k in range(3)}
    verdict = adopt(better, current, aerial)
    assert verdict["adopt"] and verdict["mean_gain"] == pytest.approx(0.03) and not verdict["reasons"]
    assert not adopt(dict(list(better.items())[:2]), current, aerial)["adopt"]  # two seeds are not enough
    # a higher mean carried by one sequence per seed, the rest slightly worse: refused on the median
    lifted = {s: {n: (0.9 if n == "q9" else 0.49) for n in current} for s in better}
    v = adopt(lifted, current, aerial)
    assert not v["adopt"] and any("median" in r for r in v["reasons"])
    # level elsewhere but worse on the aerial sequences
    ground = {s: {n: (0.45 if aerial[n] else 0.6) for n in current} for s in better}
    assert any("aerial" in r for r in adopt(ground, current, aerial)["reasons"])
    assert not adopt(better, current, aerial, AdoptionRule(min_mean_gain=0.05))["adopt"]


def test_aerial_weight_of_training_sources():
    from edgetrack.errors import InputError
    from edgetrack.training.loader import is_aerial, source_weights

    class Seq:
        def __init__(self, name, aerial=None):
            self.name, self.aerial = name, aerial

    sources = [Seq("otb_Biker"), Seq("uav123_10fps_bike1"), Seq("clip", True), Seq("sat_d.avi"),
               Seq("sat_d.2"), "/pool/otb_x.avi"]
    assert [is_aerial(s, {"sat_d"}) for s in sources] == [False, True, True, True, True, False]
    assert source_weights(sources, 1.0, set()) is None  # the pairs of a run without the option are unchanged
    assert source_weights(sources, 3.0, {"sat_d"}) == [1.0, 3.0, 3.0, 3.0, 3.0, 1.0]
    with pytest.raises(InputError, match="aerial_weight"):
        source_weights(sources, 0.0, set())


def test_fast_motion_copies():
    from edgetrack.data.synthetic import synthetic_sequence
    from edgetrack.evaluation.disappear import FastMotion, fast_motion, source_label

    seq = synthetic_sequence(3, n_frames=95)
    fast = FastMotion(seq, 3)
    assert len(fast) == 32 and fast.name == f"{seq.name}~x3"
    np.testing.assert_array_equal(fast.gt, seq.gt[::3])
    np.testing.assert_array_equal(fast.frame(2), seq.frame(6))
    assert fast.init_box == seq.init_box and len(fast.head(10)) == 10
    assert source_label(fast) == source_label(seq)
    assert [f.step for f in fast_motion([seq, synthetic_sequence(4, n_frames=40)])] == [2]  # too short: none
    with pytest.raises(ValueError):
        FastMotion(seq, 1)
