"""``edgetrack bench`` on a folder of video files, and the per-source columns of benchmarks/students_table.py."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from test_data_videos import H, W, boxes, write_boxes, write_clip, write_manifest
from test_eval_cli import parse

from edgetrack.cli import bench
from edgetrack.data import Dataset, read_videos
from edgetrack.errors import DataError
from edgetrack.evaluation.bench import drop_unscorable

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def videos(tmp_path):
    root = tmp_path / "clips"
    root.mkdir()
    for name, n in (("otb_a", 8), ("otb_b", 6), ("davis_c", 5)):
        write_clip(root / f"{name}.avi", n=n)
    write_boxes(root / "otb_a.txt", boxes(8))
    write_boxes(root / "otb_b.txt", boxes(6))
    write_manifest(root, [
        ("otb_a", "otb_a.avi", 8, W, H, "yes", "no", "OTB-100 A", "train"),
        ("otb_b", "otb_b.avi", 6, W, H, "yes", "no", "OTB-100 B", "val"),
        ("davis_c", "davis_c.avi", 5, W, H, "no", "no", "DAVIS c", "val"),
    ])
    return root


def test_bench_on_a_folder_of_videos(videos, tmp_path, capsys):
    out = tmp_path / "out"
    rc = bench.run(parse([str(videos), "--model", "none", "--peers", "kcf", "--workers", "0", "--out", str(out),
                          "--no-plots", "--json"]))
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "not scored, no ground truth (frames only): 1 sequence(s): davis_c" in captured.err
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["format"] == "videos"
    assert report["not_scored"] == {"davis_c": "no ground truth (frames only)"}
    assert report["trackers"]["opencv-kcf"]["overall"]["n_sequences"] == 2
    assert sorted(report["trackers"]["opencv-kcf"]["sequences"]) == ["otb_a", "otb_b"]

    rc = bench.run(parse([str(videos), "--split", "val", "--model", "none", "--peers", "kcf", "--workers", "0",
                          "--out", str(tmp_path / "val"), "--no-plots"]))
    assert rc == 0
    report = json.loads((tmp_path / "val" / "report.json").read_text())
    assert list(report["trackers"]["opencv-kcf"]["sequences"]) == ["otb_b"]


def test_nothing_scorable_is_an_error(videos, tmp_path, capsys):
    rc = bench.run(parse([str(videos), "--sequences", "davis_c", "--model", "none", "--peers", "kcf",
                          "--out", str(tmp_path / "o")]))
    assert rc == 2 and "nothing to score" in capsys.readouterr().err
    with pytest.raises(DataError, match="nothing to score"):
        drop_unscorable(read_videos(videos).select(["davis_c"]), log=lambda msg: None)


def load_students_table():
    spec = importlib.util.spec_from_file_location("students_table", REPO / "benchmarks" / "students_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Held:
    """Stands in for edgetrack.data.heldout.HeldOut: names, parts, sources and aerial flags."""

    def __init__(self, rows):
        self.names = [r[0] for r in rows]
        self.part = {r[0]: r[1] for r in rows}
        self.source = {r[0]: r[2] for r in rows}
        self.aerial = {r[0]: r[3] for r in rows}

    def groupings(self):
        return {"part": self.part, "source": self.source,
                "view": {n: "aerial" if a else "ground" for n, a in self.aerial.items()}}


def _entry(aucs, overall=None):
    return {"overall": {"success_auc": overall, "precision_20": None, "update_ms_p50": None},
            "sequences": {k: {"success_auc": v} for k, v in aucs.items()}}


HELD = _Held([("otb_X", "dev-val", "OTB", False), ("uav123_Y", "dev-val", "UAV123", True),
              ("otb_p", "pool-val", "OTB", False), ("dtb70_Z", "val-videos", "DTB70", True)])


def test_students_table_groups_and_columns():
    st = load_students_table()
    seqs = {"otb_X": 0.6, "uav123_Y": 0.4, "dtb70_Z": 0.5, "otb_p": 0.2}
    report = {"trackers": {"teacher": _entry(seqs, 0.425), "x-dull": _entry({})}}
    rows = st.table_rows(report, {}, HELD)
    assert [r["tracker"] for r in rows] == ["teacher", "x-dull"]
    g = rows[0]["groups"]
    assert g["source"] == pytest.approx({"OTB": 0.4, "UAV123": 0.4, "DTB70": 0.5})
    assert g["part"] == pytest.approx({"dev-val": 0.5, "pool-val": 0.2, "val-videos": 0.5})
    assert g["view"] == pytest.approx({"aerial": 0.45, "ground": 0.4})
    assert "vs_teacher" in rows[1] and rows[1]["vs_teacher"]["median_diff"] is None
    table = st.format_tables(rows, HELD)
    assert "| tracker | AUC | P@20 | dev-val | pool-val | val-videos | aerial | ground |" in table
    assert "| teacher | 0.425 | - | 0.500 | 0.200 | 0.500 | 0.450 | 0.400 | - |" in table
    assert "| tracker | OTB (2) | UAV123 (1) | DTB70 (1) |" in table


def test_students_table_pairs_sequences_with_the_teacher_and_the_baseline():
    """The median per-sequence difference and the counts ignore one sequence that swings the mean; seeds named
    NAME-sK get their spread and the adoption rule's verdict."""
    st = load_students_table()
    teacher = {"otb_X": 0.7, "uav123_Y": 0.6, "otb_p": 0.2, "dtb70_Z": 0.5}
    student = {"otb_X": 0.6, "uav123_Y": 0.58, "otb_p": 0.7, "dtb70_Z": 0.5}
    report = {"trackers": {"teacher": _entry(teacher, 0.5), "default": _entry(student, 0.595),
                           **{f"new-s{k}": _entry({n: v + 0.02 for n, v in student.items()}, 0.615)
                              for k in range(3)}}}
    rows = {r["tracker"]: r for r in st.table_rows(report, {}, HELD, baseline="default")}
    # differences -0.1, -0.02, +0.5, 0.0: median of the middle two, -0.01
    assert rows["default"]["vs_teacher"]["median_diff"] == pytest.approx(-0.01)
    assert (rows["default"]["vs_teacher"]["below"], rows["default"]["vs_teacher"]["above"]) == (1, 1)
    assert rows["new-s0"]["vs_baseline"]["median_diff"] == pytest.approx(0.02)
    assert rows["default"]["vs_teacher_aerial"]["n"] == 2 and "vs_baseline" not in rows["default"]
    fam = st.seed_summary(report, HELD, "default")["new"]
    assert fam["mean"] == pytest.approx(0.615) and fam["vs_baseline"]["adopt"]


def test_students_table_held_out_set(videos, tmp_path):
    """The package's held-out set: here only a pool folder (its val rows) under a shared-like folder."""
    st = load_students_table()
    shared = tmp_path / "shared"
    (shared / "data").mkdir(parents=True)
    (shared / "data" / "train-videos").symlink_to(videos, target_is_directory=True)
    held = st.held_out(str(shared), "dev")
    ds = held.dataset
    assert isinstance(ds, Dataset) and ds.names == ["otb_b"] and held.part == {"otb_b": "pool-val"}
    assert held.source == {"otb_b": "OTB"} and list(held.not_scored) == ["davis_c"]
    assert np.isfinite(ds["otb_b"].gt).all()
