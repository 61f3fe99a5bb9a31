"""Dataset readers on tiny hand-made layouts, their error messages, and the shared dev sequences."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED  # noqa: E402

from edgetrack.data import (
    DTB70_CODES,
    Sequence,
    detect_format,
    open_dataset,
    parse_config_seqs,
    read_got10k,
    read_lasot,
    read_uav123,
)
from edgetrack.data.uav123 import _frame_range
from edgetrack.errors import DataError

DEV = SHARED / "data" / "dev-sequences"


def frames(folder: Path, numbers, digits: int = 4) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in numbers:
        img = np.full((8, 10, 3), (i * 7) % 255, np.uint8)
        cv2.imwrite(str(folder / f"{i:0{digits}d}.jpg"), img)


def boxes_text(n: int, sep: str = ",", nan_rows=()) -> str:
    rows = ["NaN,NaN,NaN,NaN" if i in nan_rows else sep.join(str(v) for v in (i, 2, 3, 4)) for i in range(n)]
    return "\n".join(rows) + "\n"


def dtb_seq(root: Path, name: str, n: int, **kw) -> Path:
    frames(root / name / "img", range(1, n + 1), kw.pop("digits", 5))
    (root / name / "groundtruth_rect.txt").write_text(boxes_text(n, **kw))
    return root / name


def test_dtb70_layout_with_attributes(tmp_path):
    root = tmp_path / "DTB70"
    dtb_seq(root, "Animal1", 5, nan_rows=(3,))
    dtb_seq(root, "Car2", 4)
    (root / "att").mkdir()
    (root / "att" / "Animal1.txt").write_text("1,1,0,0,0,0,0,0,0,1,0\n")
    assert detect_format(root) == "dtb70"
    ds = open_dataset(root)
    assert ds.format == "dtb70" and ds.names == ["Animal1", "Car2"] and ds.attribute_names == DTB70_CODES
    seq = ds["Animal1"]
    assert len(seq) == 5 and seq.gt.shape == (5, 4) and np.isnan(seq.gt[3]).all()
    assert seq.absent.tolist() == [False, False, False, True, False]
    assert seq.attributes["SV"] and seq.attributes["SOA"] and not seq.attributes["OCC"]
    assert ds["Car2"].attributes == {}
    assert seq.frame(0).shape == (8, 10, 3) and seq.frame(0).dtype == np.uint8
    assert len(list(seq)) == 5 and seq.init_box == (0.0, 2.0, 3.0, 4.0)


def test_plain_folder_and_dataset_api(tmp_path):
    dtb_seq(tmp_path, "b", 3, digits=4)
    dtb_seq(tmp_path, "a", 6, digits=4)
    (tmp_path / "notes").mkdir()  # neither images nor ground truth: ignored
    ds = open_dataset(tmp_path)
    assert ds.format == "folder" and ds.names == ["a", "b"] and ds.n_frames == 9
    assert ds.select(["b"]).names == ["b"] and ds.select(max_sequences=1).names == ["a"]
    assert [len(s) for s in ds.head(4)] == [4, 3]
    with pytest.raises(DataError, match="no sequence"):
        ds.select(["zzz"])
    with pytest.raises(KeyError):
        ds["zzz"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "groundtruth_rect.txt").write_text(boxes_text(4)), r"5 images .* but 4 rows"),
        (lambda d: (d / "groundtruth_rect.txt").write_text("1,2,3,4\n1,2,x,4\n"), r"groundtruth_rect\.txt, line 2"),
        (lambda d: (d / "img" / "00003.jpg").unlink(), r"missing image 00003\.jpg"),
        (lambda d: (d / "groundtruth_rect.txt").unlink(), "missing ground truth"),
        (lambda d: [p.unlink() for p in (d / "img").glob("*.jpg")], "no images"),
        (lambda d: (d / "groundtruth_rect.txt").write_text("NaN,NaN,NaN,NaN\n" + boxes_text(4)), "first frame"),
    ],
)
def test_clear_errors(tmp_path, damage, message):
    seq_dir = dtb_seq(tmp_path, "Seq", 5)
    damage(seq_dir)
    with pytest.raises(DataError, match=message):
        open_dataset(tmp_path, "dtb70")


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(DataError, match="no sequences found"):
        open_dataset(tmp_path, "folder")
    with pytest.raises(DataError, match="cannot tell"):
        open_dataset(tmp_path)
    with pytest.raises(DataError, match="not found"):
        open_dataset(tmp_path / "nope", "dtb70")
    with pytest.raises(DataError, match="unknown dataset format"):
        open_dataset(tmp_path, "vot")


def test_unreadable_frame_is_a_data_error(tmp_path):
    seq_dir = dtb_seq(tmp_path, "Seq", 3)
    (seq_dir / "img" / "00002.jpg").write_bytes(b"not a jpeg")
    seq = open_dataset(tmp_path)["Seq"]
    with pytest.raises(DataError, match="frame 2 is unreadable"):
        seq.frame(1)


def test_otb_quirks(tmp_path):
    frames(tmp_path / "Football1" / "img", range(1, 82))  # 81 images, 74 annotated
    (tmp_path / "Football1" / "groundtruth_rect.txt").write_text(boxes_text(74, sep="\t"))
    frames(tmp_path / "Jogging" / "img", range(1, 4))
    (tmp_path / "Jogging" / "groundtruth_rect.1.txt").write_text(boxes_text(3, sep=" "))
    (tmp_path / "Jogging" / "groundtruth_rect.2.txt").write_text("1,2\t3 4\n" * 3)
    frames(tmp_path / "Human4" / "img", range(1, 3))
    (tmp_path / "Human4" / "groundtruth_rect.1.txt").write_text("\n")  # empty file: ignored
    (tmp_path / "Human4" / "groundtruth_rect.2.txt").write_text(boxes_text(2))
    frames(tmp_path / "BlurCar3" / "img", range(3, 7))  # starts at 0003.jpg
    (tmp_path / "BlurCar3" / "groundtruth_rect.txt").write_text(boxes_text(4))
    assert detect_format(tmp_path) == "otb"
    ds = open_dataset(tmp_path)
    assert ds.names == ["BlurCar3", "Football1", "Human4", "Jogging.1", "Jogging.2"]
    assert len(ds["Football1"]) == 74 and ds["Football1"].frame_paths[-1].endswith("0074.jpg")
    assert ds["BlurCar3"].frame_paths[0].endswith("0003.jpg")
    np.testing.assert_array_equal(ds["Jogging.2"].gt[0], [1, 2, 3, 4])
    with pytest.raises(DataError, match="81 images"):
        open_dataset(tmp_path, "folder")  # the partial-annotation table is OTB's only


def test_uav123_sub_sequences_from_the_table_and_a_config(tmp_path):
    root = tmp_path / "UAV123_10fps"
    (root / "anno" / "UAV123_10fps").mkdir(parents=True)
    (root / "anno" / "UAV123_10fps" / "person8_2.txt").write_text(boxes_text(151, nan_rows=(5,)))
    (root / "anno" / "UAV123_10fps" / "boat1.txt").write_text(boxes_text(3))
    frames(root / "data_seq" / "UAV123_10fps" / "person8", range(359, 510), digits=6)
    frames(root / "data_seq" / "UAV123_10fps" / "boat1", range(1, 4), digits=6)
    assert detect_format(root) == "uav123"
    ds = read_uav123(root)
    assert ds.name == "UAV123_10fps" and ds.names == ["boat1", "person8_2"]
    seq = ds["person8_2"]
    assert seq.frame_paths[0].endswith("person8/000359.jpg") and seq.frame_paths[-1].endswith("000509.jpg")
    assert seq.absent.sum() == 1
    (root / "configSeqs.m").write_text(
        "seqs={struct('name','person8_2','path','D:\\UAV123_10fps\\data_seq\\UAV123_10fps\\person8\\',"
        "'startFrame',360,'endFrame',510,'nz',6,'ext','jpg','init_rect',[0,0,0,0]),...\n"
        "struct('name','boat1','path','D:\\x\\boat1\\','startFrame',1,'endFrame',3,'nz',6,'ext','jpg')};\n"
    )
    with pytest.raises(DataError, match="missing image .*000510.jpg"):
        read_uav123(root)  # the config shifts the range by one frame past the last image


def test_uav123_ranges_match_the_published_configs(tmp_path):
    # 30 fps values from UAV123's configSeqs.m; 10 fps values from UAV123_10fps's configSeqs.m
    assert _frame_range("car16_2", 1579, "UAV123", None)[:3] == ("car16", 415, 1993)
    assert _frame_range("bird1_2", 0, "UAV123_10fps", None)[:3] == ("bird1", 259, 493)
    assert _frame_range("uav1_3", 0, "UAV123_10fps", None)[:3] == ("uav1", 825, 1157)
    assert _frame_range("car6_5", 0, "UAV123_10fps", None)[:3] == ("car6", 1309, 1621)
    assert _frame_range("bike1", 3085, "UAV123", None)[:3] == ("bike1", 1, 3085)
    cfg = tmp_path / "configSeqs.m"
    cfg.write_text("struct('name','Animal1','path','/data/DTB70/Animal1/img/','startFrame',1,'endFrame',147,"
                   "'nz',5,'ext','jpg','init_rect', [0,0,0,0])")
    assert parse_config_seqs(cfg) == {"Animal1": ("Animal1", 1, 147, 5, "jpg")}


def test_got10k_val_and_test(tmp_path):
    val = tmp_path / "GOT-10k" / "val"
    frames(val / "GOT-10k_Val_000001", range(1, 5), digits=8)
    (val / "GOT-10k_Val_000001" / "groundtruth.txt").write_text(boxes_text(4))
    (val / "GOT-10k_Val_000001" / "absence.label").write_text("0\n0\n1\n0\n")
    (val / "list.txt").write_text("GOT-10k_Val_000001\n")
    assert detect_format(val) == "got10k"
    seq = open_dataset(val)["GOT-10k_Val_000001"]
    assert seq.absent.tolist() == [False, False, True, False] and seq.gt_complete
    test = tmp_path / "GOT-10k" / "test"
    frames(test / "GOT-10k_Test_000001", range(1, 4), digits=8)
    (test / "GOT-10k_Test_000001" / "groundtruth.txt").write_text("1,2,3,4\n")
    seq = read_got10k(test)["GOT-10k_Test_000001"]
    assert not seq.gt_complete and len(seq) == 3 and np.isnan(seq.gt[1:]).all()
    with pytest.raises(DataError, match="point at one split"):
        read_got10k(tmp_path / "GOT-10k")


def test_lasot(tmp_path):
    seq_dir = tmp_path / "airplane" / "airplane-1"
    frames(seq_dir / "img", range(1, 5), digits=8)
    (seq_dir / "groundtruth.txt").write_text(boxes_text(4))
    (seq_dir / "full_occlusion.txt").write_text("0,0,1,0")
    (seq_dir / "out_of_view.txt").write_text("0,0,0,1")
    assert detect_format(tmp_path) == "lasot"
    seq = read_lasot(tmp_path)["airplane-1"]
    assert seq.absent.tolist() == [False, False, True, True]
    (seq_dir / "out_of_view.txt").write_text("0,0,0")
    with pytest.raises(DataError, match="3 flags for 4 frames"):
        read_lasot(tmp_path)


def test_in_memory_sequence_checks():
    imgs = [np.zeros((4, 4, 3), np.uint8)] * 3
    seq = Sequence.from_arrays("m", imgs, np.array([[0, 0, 2, 2]] * 3, float))
    assert len(seq) == 3 and seq.frame(-1).shape == (4, 4, 3)
    with pytest.raises(DataError, match="3 frames but 2"):
        Sequence.from_arrays("m", imgs, np.array([[0, 0, 2, 2]] * 2, float))
    with pytest.raises(IndexError):
        seq.frame(3)


@pytest.mark.skipif(not DEV.is_dir(), reason=f"shared dev sequences not found at {DEV}")
def test_shared_dev_sequences():
    ds = open_dataset(DEV)
    assert ds.format == "folder" and len(ds) == 25
    seq = ds["uav123_10fps_group2_2"]
    assert seq.absent.sum() == 5 and len(seq) == 289
    first = seq.frame(0)
    assert first.ndim == 3 and first.shape[2] == 3 and max(first.shape[:2]) <= 640
