"""Video files + optional box files as a dataset layout (edgetrack.data.videos) and source labels."""
from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest
from conftest import shared_path

from edgetrack.data import (
    VideoSequence,
    detect_format,
    open_dataset,
    read_video_pool,
    read_videos,
    source_of,
    training_sources,
)
from edgetrack.errors import DataError

W, H = 96, 64
HEADER = "name\tfile\tframes\twidth\theight\thas_gt\taerial\toriginal_dataset_and_sequence\tsplit\n"


def write_clip(path, n=12, fourcc="MJPG"):
    """A clip whose frame ``i`` is grey level ``20 * i`` (decoded order is checkable), with a white square."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (W, H))
    assert writer.isOpened()
    for i in range(n):
        frame = np.full((H, W, 3), 20 * i % 240, np.uint8)
        frame[10:30, 20 + i:40 + i] = 255
        writer.write(frame)
    writer.release()
    return path


def boxes(n):
    return np.array([[21.0 + i, 11.0, 20.0, 20.0] for i in range(n)])


def write_boxes(path, rows):
    lines = ["nan,nan,nan,nan" if np.isnan(r).any() else "{:g},{:g}\t{:g} {:g}".format(*r) for r in rows]
    path.write_text("".join(line + "\n" for line in lines))


def grey(frame):
    return float(frame[40:, :].mean())


@pytest.fixture
def clips(tmp_path):
    write_clip(tmp_path / "walk.avi")
    write_boxes(tmp_path / "walk.txt", boxes(12))
    write_clip(tmp_path / "park.mp4", n=10, fourcc="mp4v")
    return tmp_path


def test_frames_and_boxes(clips):
    assert detect_format(clips) == "videos"
    ds = open_dataset(clips)
    assert ds.format == "videos" and ds.names == ["park", "walk"]
    seq = ds["walk"]
    assert isinstance(seq, VideoSequence) and len(seq) == 12 and seq.gt_complete and seq.has_gt == "yes"
    np.testing.assert_allclose(seq.gt, boxes(12))
    assert seq.init_box == (21.0, 11.0, 20.0, 20.0) and seq.unscored_reason is None
    frames = list(seq)
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
    assert [round(grey(f) / 20) for f in frames] == list(range(12))
    for i in (7, 2, 11, 0, -1, 5):  # random access, backward and forward jumps
        np.testing.assert_array_equal(seq.frame(i), frames[i])
    assert len(seq.head(4)) == 4 and seq.head(4).gt.shape == (4, 4)
    with pytest.raises(IndexError):
        seq.frame(12)
    copy = pickle.loads(pickle.dumps(seq))  # what a spawned evaluation worker receives
    np.testing.assert_array_equal(copy.frame(3), frames[3])


def test_random_access_on_mp4(clips):
    seq = open_dataset(clips)["park"]
    frames = [seq.frame(i) for i in range(len(seq))]
    for i in (9, 3, 8, 0, 4):
        np.testing.assert_array_equal(seq.frame(i), frames[i])


def test_video_without_boxes_is_frames_only(clips):
    seq = open_dataset(clips)["park"]
    assert seq.has_gt == "no" and not seq.gt_complete and not seq.labeled
    assert "no ground truth" in seq.unscored_reason and np.isnan(seq.gt).all() and len(seq) == 10
    with pytest.raises(DataError, match="no first-frame box"):
        _ = seq.init_box


def test_nan_rows_are_absent(clips):
    rows = boxes(12)
    rows[4:7] = np.nan
    write_boxes(clips / "walk.txt", rows)
    seq = open_dataset(clips)["walk"]
    assert seq.gt_complete and seq.absent.tolist() == [4 <= i < 7 for i in range(12)]


def test_init_only_and_partial_box_files(clips):
    write_boxes(clips / "walk.txt", boxes(1))
    seq = open_dataset(clips)["walk"]
    assert seq.has_gt == "init_only" and not seq.gt_complete and seq.labeled and len(seq) == 12
    assert np.isnan(seq.gt[1:]).all() and not seq.absent.any() and "first box" in seq.unscored_reason
    write_boxes(clips / "walk.txt", boxes(5))
    seq = open_dataset(clips)["walk"]
    assert seq.has_gt == "partial" and "5 of 12" in seq.unscored_reason
    sources = training_sources(open_dataset(clips))
    assert sources == [str(clips / "park.mp4"), str(clips / "walk.avi")]


@pytest.mark.parametrize("text, match", [
    ("1,2,3\n", "line 1: expected 4 values"),
    ("nan,nan,nan,nan\n", "line 1: the first frame needs a box"),
    ("1,1,5,5\n1,1,-5,5\n", "line 2: negative width or height"),
    ("1,1,5,5\n500,300,5,5\n", "line 2: .* outside the 96x64 frames"),
    ("1,1,5,5\n" * 13, "13 boxes but .*walk.avi has 12 frames"),
    ("", "holds no boxes"),
])
def test_bad_box_file(clips, text, match):
    (clips / "walk.txt").write_text(text)
    with pytest.raises(DataError, match=match) as info:
        open_dataset(clips)
    assert "walk" in str(info.value)


def test_corrupt_and_truncated_videos(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"not a video" * 100)
    with pytest.raises(DataError, match=r"junk\.mp4: cannot open the video"):
        read_videos(tmp_path)
    (tmp_path / "junk.mp4").unlink()
    data = write_clip(tmp_path / "full.avi", n=30).read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    (tmp_path / "full.avi").unlink()
    with pytest.raises(DataError, match=r"cut\.avi: .*(truncated|corrupt)"):
        read_videos(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no video files"):
        read_videos(tmp_path / "empty")


def write_manifest(root, rows):
    (root / "MANIFEST.tsv").write_text(HEADER + "".join("\t".join(map(str, r)) + "\n" for r in rows))


@pytest.fixture
def pool(tmp_path):
    for name, n in (("otb_a", 12), ("otb_b", 10), ("davis_c", 8), ("sat_d", 9)):
        write_clip(tmp_path / f"{name}.avi", n=n)
    write_boxes(tmp_path / "otb_a.txt", boxes(12))
    write_boxes(tmp_path / "otb_b.txt", boxes(10))
    write_boxes(tmp_path / "sat_d.txt", np.vstack([boxes(1), np.full((8, 4), np.nan)]))
    write_manifest(tmp_path, [
        ("otb_a", "otb_a.avi", 12, W, H, "yes", "no", "OTB-100 A", "train"),
        ("otb_b", "otb_b.avi", 10, W, H, "yes", "no", "OTB-100 B", "val"),
        ("davis_c", "davis_c.avi", 8, W, H, "no", "no", "DAVIS-2017 c", "val"),
        ("sat_d", "sat_d.avi", 9, W, H, "init_only", "yes", "Satellite video d", "train"),
    ])
    return tmp_path


def test_manifest_selection_and_metadata(pool):
    ds = read_video_pool(pool)
    assert detect_format(pool) == "videos" and ds.names == ["otb_a", "otb_b", "davis_c", "sat_d"]
    assert read_video_pool(pool, split="val").names == ["otb_b", "davis_c"]
    assert read_video_pool(pool, split="val", require_gt=True).names == ["otb_b"]
    assert read_video_pool(pool, require_gt=False).names == ["davis_c", "sat_d"]
    assert open_dataset(pool, split="train").names == ["otb_a", "sat_d"]
    sat = ds["sat_d"]  # init_only: the nan rows after the first box are unknown, not absent
    assert sat.has_gt == "init_only" and not sat.gt_complete and sat.aerial is True and sat.split == "train"
    assert np.isnan(sat.gt[1:]).all() and not sat.absent.any()
    assert ds["otb_b"].meta["original_dataset_and_sequence"] == "OTB-100 B" and ds["otb_b"].aerial is False
    assert [source_of(s) for s in ds] == ["OTB", "OTB", "DAVIS", "sat"]
    with pytest.raises(DataError, match="no rows of split 'test'"):
        read_video_pool(pool, split="test")


@pytest.mark.parametrize("edit, match", [
    (lambda r: r.__setitem__(2, 11), "line 2 .*frames is 11 but .*otb_a.avi has 12"),
    (lambda r: r.__setitem__(5, "maybe"), "has_gt must be one of"),
    (lambda r: r.__setitem__(1, "gone.avi"), "video file not found"),
    (lambda r: r.__setitem__(5, "no"), "has_gt=no but there is a box file"),
])
def test_manifest_errors(pool, edit, match):
    row = ["otb_a", "otb_a.avi", 12, W, H, "yes", "no", "OTB-100 A", "train"]
    edit(row)
    write_manifest(pool, [row])
    with pytest.raises(DataError, match=match):
        read_video_pool(pool)


def test_split_needs_a_manifest(clips):
    with pytest.raises(DataError, match="needs .*MANIFEST.tsv"):
        read_video_pool(clips, split="val")
    with pytest.raises(DataError, match="only in a video folder"):
        open_dataset(clips, "folder", split="val")


def test_source_labels():
    assert [source_of(n) for n in ("otb_Bird2", "uav123_10fps_boat1", "vot_bag", "vot2015_car1_first252",
                                   "dtb70_Animal1", "ytvos_1001_x", "sam2_dog", "archery")] == \
        ["OTB", "UAV123", "VOT", "VOT", "DTB70", "YouTube-VOS", "sam2", "other"]


def test_pair_sampler_takes_video_sequences(pool):
    from edgetrack.training.pairs import PairSampler, PairSpec

    sampler = PairSampler(training_sources(read_video_pool(pool)), PairSpec(exemplar_size=32, instance_size=64))
    assert [s.labeled for s in sampler.sources] == [True, True, False, False]
    pairs = [sampler.sample(i) for i in range(12)]
    assert any(p["has_gt"] and p["positive"] for p in pairs) and all(p["search"].shape == (64, 64, 3) for p in pairs)


def test_shared_pool_val_rows():
    root = shared_path("data", "train-videos")
    val = read_video_pool(root, split="val", require_gt=True)
    assert len(val) >= 1 and all(s.gt_complete and s.split == "val" for s in val)
    assert all(len(s) == int(s.meta["frames"]) and s.frame(0).shape[:2] == (int(s.meta["height"]),
               int(s.meta["width"])) for s in val)
    assert {source_of(s) for s in val} <= {"OTB", "UAV123", "VOT", "DAVIS", "YouTube-VOS", "GOT-10k", "LaSOT"}
