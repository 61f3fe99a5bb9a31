"""Reports: report.json contents, the markdown table, plots, missing results and the absent-frame option."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgetrack.data import open_dataset, write_dataset
from edgetrack.evaluation import EvalOptions, TrackerFactory, build_report, format_table, run_ope, write_report
from edgetrack.evaluation.results import box_path

OVERALL_KEYS = {
    "success_auc", "precision_20", "norm_precision", "success_rate_50", "update_ms_p50", "update_ms_p90",
    "update_ms_p99", "init_ms_p50", "decode_ms_p50", "fps", "peak_rss_mb", "model_size_mb",
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    ds = open_dataset(write_dataset(tmp / "data", n_sequences=3, seed=2, n_frames=8, size=(96, 72)))
    run_ope(ds, [TrackerFactory("identity"), TrackerFactory("kcf")], tmp / "results", workers=0, progress=False)
    return ds, tmp


def _strict_json(path):
    def reject(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=reject)


def test_report_files_and_contents(results):
    ds, tmp = results
    report = build_report(ds, tmp / "results", ["identity", "opencv-kcf"])
    paths = write_report(report, tmp / "out")
    assert set(paths) == {"json", "markdown", "success", "precision", "attributes"}
    for key in ("success", "precision", "attributes"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = _strict_json(paths["json"])
    kcf = data["trackers"]["opencv-kcf"]
    assert OVERALL_KEYS <= set(kcf["overall"]) and kcf["complete"] and kcf["overall"]["n_sequences"] == 3
    assert kcf["overall"]["update_ms_p50"] > 0 and kcf["overall"]["fps"] > 0
    assert kcf["overall"]["model_size_mb"] is None and kcf["overall"]["peak_rss_mb"] > 0
    assert set(kcf["sequences"]) == set(ds.names)
    assert len(kcf["sequences"]["synth_000"]["success_curve"]) == 21
    assert kcf["attributes"] and all(v["n_sequences"] >= 1 for v in kcf["attributes"].values())
    assert data["dataset"]["attributes"][0] == "SV" and data["protocol"]["absent_frames"] == "count as failures"
    md = paths["markdown"].read_text()
    assert "| opencv-kcf |" in md and "| identity |" in md and "per attribute" in md


def test_missing_results_are_flagged(results, tmp_path):
    ds, tmp = results
    report = build_report(ds, tmp / "results", ["identity", "never-ran"])
    never = report["trackers"]["never-ran"]
    assert not never["complete"] and never["missing"] == ds.names and never["overall"]["success_auc"] is None
    assert "| never-ran | - |" in format_table(report) and "0* |" in format_table(report)
    paths = write_report(report, tmp_path, plots=True)
    assert _strict_json(paths["json"])["trackers"]["never-ran"]["overall"]["n_sequences"] == 0


def test_exclude_absent_changes_only_sequences_with_absent_frames(results):
    ds, tmp = results
    default = build_report(ds, tmp / "results", ["identity"])["trackers"]["identity"]["sequences"]
    excl = build_report(ds, tmp / "results", ["identity"], EvalOptions(exclude_absent=True))
    seqs = excl["trackers"]["identity"]["sequences"]
    assert excl["protocol"]["absent_frames"] == "excluded"
    for seq in ds:
        if seq.absent.any():
            assert seqs[seq.name]["n_frames"] == len(seq) - seq.absent.sum()
        else:
            assert seqs[seq.name]["success_auc"] == default[seq.name]["success_auc"]


def test_truncated_result_counts_as_missing(results, tmp_path):
    ds, tmp = results
    import shutil

    shutil.copytree(tmp / "results", tmp_path / "r")
    path = box_path(tmp_path / "r", "identity", "synth_001")
    path.write_text("\n".join(path.read_text().splitlines()[:3]) + "\n")
    entry = build_report(ds, tmp_path / "r", ["identity"])["trackers"]["identity"]
    assert entry["missing"] == ["synth_001"] and entry["overall"]["n_sequences"] == 2
    assert np.isfinite(entry["overall"]["success_auc"])


def test_withheld_ground_truth_is_not_scored(tmp_path):
    from edgetrack.data import Dataset, Sequence

    imgs = [np.zeros((16, 16, 3), np.uint8)] * 4
    seq = Sequence.from_arrays("test_seq", imgs, np.array([[2, 2, 5, 5]], float), gt_complete=False)
    ds = Dataset("got10k-test", (seq,), "got10k")
    run_ope(ds, [TrackerFactory("identity")], tmp_path, workers=0, progress=False)
    entry = build_report(ds, tmp_path, ["identity"])["trackers"]["identity"]
    assert entry["sequences"]["test_seq"]["unscored"] and entry["overall"]["n_sequences"] == 0
