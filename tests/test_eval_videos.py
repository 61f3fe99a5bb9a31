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


def test_students_table_per_source_columns():
    st = load_students_table()
    groups = {"otb_X": "OTB", "uav123_Y": "UAV123", "otb_p": "pool-OTB", "vot_Z": "VOT"}
    seqs = {"otb_X": 0.6, "uav123_Y": 0.4, "vot_Z": 0.5, "otb_p": 0.2}
    report = {"trackers": {"teacher": {"overall": {"success_auc": 0.425, "precision_20": 0.5, "update_ms_p50": 2.0},
                                       "sequences": {k: {"success_auc": v} for k, v in seqs.items()}},
                           "x-dull": {"overall": {"success_auc": None, "precision_20": None, "update_ms_p50": None},
                                      "sequences": {}}}}
    rows = st.table_rows(report, {}, groups)
    assert [r["tracker"] for r in rows] == ["teacher", "x-dull"]
    row = rows[0]
    assert row["by_source"] == {"OTB": 0.6, "UAV123": 0.4, "pool-OTB": 0.2, "VOT": 0.5}
    assert row["dev_auc"] == pytest.approx(0.5) and row["pool_auc"] == 0.2
    assert row["dev_minus_pool"] == pytest.approx(0.3)
    columns = st.source_columns(groups)
    assert columns == ["OTB", "UAV123", "VOT", "pool-OTB"]
    table = st.format_rows(rows, columns)
    assert "| OTB | UAV123 | VOT | pool-OTB | dev val | pool val | dev - pool |" in table
    assert ("| teacher | 0.425 | 0.500 | 0.600 | 0.400 | 0.500 | 0.200 | 0.500 | 0.200 | +0.300 | +0.000 | 0 / 0 |"
            in table)
    assert st.targets(rows) == {}
    assert rows[1]["median_vs_teacher"] is None and rows[1]["below_teacher"] is None


def test_students_table_pairs_sequences_with_the_teacher():
    """The median per-sequence difference and the counts ignore one sequence that swings the mean."""
    st = load_students_table()
    teacher = {"sequences": {"a": {"success_auc": 0.7}, "b": {"success_auc": 0.6}, "c": {"success_auc": 0.2},
                             "d": {"success_auc": 0.5}}}
    student = {"sequences": {"a": {"success_auc": 0.6}, "b": {"success_auc": 0.58}, "c": {"success_auc": 0.7},
                             "d": {"success_auc": 0.5}, "e": {"success_auc": 0.9}}}
    paired = st.paired_with_teacher(student, teacher)
    # differences -0.1, -0.02, +0.5, 0.0 (e has no teacher result): median of the middle two, -0.01
    assert paired["median_vs_teacher"] == pytest.approx(-0.01)
    assert (paired["below_teacher"], paired["above_teacher"]) == (1, 1)
    assert st.paired_with_teacher(student, None)["median_vs_teacher"] is None


def test_students_table_held_out_set(videos, tmp_path, monkeypatch):
    """Dev val sequences (a tiny DTB70-layout set standing in for the dev split) plus the pool's val rows."""
    from edgetrack.data.synthetic import write_dataset

    st = load_students_table()
    dev = write_dataset(tmp_path / "dev", n_sequences=2, seed=0, n_frames=5, size=(96, 64))
    monkeypatch.setattr("edgetrack.training.split.load_split", lambda name: {"val": ["synth_001"]})
    ds, groups, skipped = st.held_out(str(dev), "dev", str(videos), "val")
    assert isinstance(ds, Dataset) and ds.names == ["synth_001", "otb_b"]
    assert groups == {"synth_001": "synth", "otb_b": "pool-OTB"} and list(skipped) == ["davis_c"]
    assert np.isfinite(ds["otb_b"].gt).all()
