"""The accuracy gate and edgetrack-export end to end on the tiny checkpoint and a tiny generated dataset."""
import json

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from edgetrack.export.cli import main as export_main  # noqa: E402
from edgetrack.export.gate import (  # noqa: E402
    GateRow,
    GateSettings,
    TrackingScore,
    gate_export,
    judge,
    parity_inputs,
    track_sequences,
    tracker_factory,
    validation_sequences,
)
from edgetrack.models.io import load_checkpoint  # noqa: E402


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGETRACK_CACHE", str(tmp_path / "cache"))


def test_judge():
    row = GateRow("onnx", "int8", "f", auc=0.5, auc_drop=0.02, parity={"cls": 0.01}, parity_tolerance=0.25)
    assert judge(row, 0.05).status == "ok"
    failed = judge(row, 0.01)
    assert failed.status == "failed" and "AUC drop" in failed.message
    off = GateRow("onnx", "fp32", "f", auc=0.5, auc_drop=0.0, parity={"cls": 1e-2}, parity_tolerance=1e-4)
    assert "parity" in judge(off, 0.01).message


def test_gate_passes_and_fails(tiny_checkpoint, tiny_onnx, tiny_dataset, tmp_path):
    from edgetrack.export import export_onnx
    from edgetrack.models import build_model
    from edgetrack.models.io import save_checkpoint

    net = load_checkpoint(tiny_checkpoint)
    seqs, source = validation_sequences(tiny_dataset, (), 8)
    assert len(seqs) == 2 and all(len(s) == 8 for s in seqs) and source == str(tiny_dataset)
    reference = track_sequences(tracker_factory(tiny_onnx, "onnx", "onnxruntime", tiny_onnx), seqs)
    assert 0.0 <= reference.auc <= 1.0 and reference.update_ms_p50 > 0
    z, x = parity_inputs(net.spec, None, n=2)
    settings = GateSettings(0.01, seqs, reference, z, x)
    ok = gate_export(tiny_onnx, "onnx", "onnxruntime", "fp32", net, settings, tiny_onnx)
    assert ok.status == "ok" and ok.auc_drop == pytest.approx(0.0) and max(ok.parity.values()) < 1e-4
    strict = GateSettings(-0.01, seqs, reference, z, x)  # a negative drop allowance fails even a perfect copy
    assert gate_export(tiny_onnx, "onnx", "onnxruntime", "fp32", net, strict, tiny_onnx).status == "failed"
    # a deliberately broken model: other weights under the same spec
    import torch

    torch.manual_seed(1)
    other = build_model(net.spec).eval()
    broken = export_onnx(load_checkpoint(save_checkpoint(other, tmp_path / "b.safetensors")), tmp_path / "b").folder
    row = gate_export(broken, "onnx", "onnxruntime", "fp32", net, settings, tiny_onnx)
    assert row.status == "failed" and "parity" in row.message


def test_validation_falls_back_to_synthetic(tmp_path):
    seqs, source = validation_sequences(None, (), 5, shared=tmp_path / "absent")
    assert source.startswith("synthetic") and len(seqs) == 4 and len(seqs[0]) == 5


def test_validation_uses_the_held_out_set_and_skips_unlabelled_videos(tmp_path):
    from conftest import shared_path

    shared = shared_path("data", "val-videos").parents[1]
    seqs, source = validation_sequences(None, (), 3, shared=shared)
    assert "held-out set" in source and len(seqs) == 27 and all(len(s) == 3 for s in seqs)
    # a pool folder given as --data: its rows without boxes are left out instead of failing the gate
    seqs, _ = validation_sequences(None, (shared / "data" / "train-videos",), 3)
    assert seqs and all(getattr(s, "unscored_reason", None) is None for s in seqs)


def _run(args, capsys):
    code = export_main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_onnx_int8(tiny_checkpoint, tiny_dataset, tmp_path, capsys):
    from edgetrack import Tracker

    out = tmp_path / "int8"
    code, text, err = _run([str(tiny_checkpoint), "--format", "onnx", "--int8", "--data", str(tiny_dataset),
                            "--calib-pairs", "12", "--val-data", str(tiny_dataset), "--val-frames", "8",
                            "--max-drop", "1", "--out", str(out), "--no-progress"], capsys)
    assert code == 0, err
    assert "below 300" in err and "onnx-int8" in text and "| AUC |" in text
    report = json.loads((out / "export.json").read_text())
    assert report["status"] == "ok" and report["rows"][0]["export"] == "onnx-int8"
    assert report["calibration"]["pairs"] == 12 and report["rows"][0]["auc_drop"] is not None
    model = onnx.load(str(out / "search.onnx"))
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    frame = np.zeros((144, 192, 3), np.uint8)
    tracker = Tracker(out)
    tracker.init(frame, (60, 40, 30, 30))
    assert len(tracker.update(frame).box) == 4


def test_cli_all_int8(tiny_checkpoint, tiny_dataset, tmp_path, capsys):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from edgetrack import Tracker

    out = tmp_path / "all"
    code, text, err = _run([str(tiny_checkpoint), "--format", "all", "--int8", "--data", str(tiny_dataset),
                            "--calib-pairs", "12", "--val-data", str(tiny_dataset), "--val-frames", "6",
                            "--max-drop", "1", "--out", str(out), "--no-progress"], capsys)
    assert code == 0, err
    assert "skipped tensorrt" in text
    report = json.loads((out / "export.json").read_text())
    assert [r["export"] for r in report["rows"]] == ["onnx-int8", "openvino-int8"]
    for name in ("onnx-int8", "openvino-int8"):
        assert json.loads((out / name / "export.json").read_text())["status"] == "ok"
        Tracker(out / name)
    assert (out / "openvino-int8" / "search.xml").is_file() and not (out / "openvino-int8" / "search.onnx").exists()


def test_cli_gate_failure_keeps_marked_files(tiny_checkpoint, tiny_dataset, tmp_path, capsys, monkeypatch):
    from edgetrack.export import gate

    monkeypatch.setitem(gate.TOLERANCES, "fp32", 0.0)  # no export is that exact: the parity check fails
    out = tmp_path / "strict"
    code, text, err = _run([str(tiny_checkpoint), "--format", "onnx", "--max-drop", "0.5",
                            "--val-data", str(tiny_dataset), "--val-frames", "6", "--out", str(out),
                            "--no-progress"], capsys)
    assert code == 1
    assert "gate failed" in err and "export.json" in err
    assert json.loads((out / "export.json").read_text())["status"] == "failed"
    assert (out / "template.onnx").is_file() and (out / "search.onnx").is_file()


def test_cli_search_size(tiny_checkpoint, tiny_dataset, tmp_path, capsys):
    """--search-size exports the same weights for smaller search crops: the spec in every file says so, and the
    export passes its gate against the FP32 reference of the same size."""
    from edgetrack import Tracker
    from edgetrack.models.io import load_checkpoint as load

    out = tmp_path / "s239"
    code, _, err = _run([str(tiny_checkpoint), "--format", "onnx", "--search-size", "239", "--val-data",
                         str(tiny_dataset), "--val-frames", "6", "--out", str(out), "--no-progress"], capsys)
    assert code == 0, err
    tracker = Tracker(out)
    spec = tracker.spec
    assert (spec.instance_size, spec.score_size, spec.origin) == (239, 15, -120.0)
    assert load(tiny_checkpoint).spec.instance_size == 255
    search = onnx.load(str(out / "search.onnx"))
    assert [d.dim_value for d in search.graph.input[0].type.tensor_type.shape.dim][1:] == [3, 239, 239]
    code, _, err = _run([str(tiny_checkpoint), "--format", "onnx", "--search-size", "250", "--out",
                         str(tmp_path / "bad")], capsys)
    assert code == 2 and "multiple of the stride" in err


def test_cli_bad_input(tiny_checkpoint, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    code, _, err = _run([str(corrupt), "--format", "onnx", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "corrupt" in err
    code, _, err = _run([str(tiny_checkpoint), "--format", "onnx", "--data", str(tmp_path / "nope")], capsys)
    assert code == 2 and "no such file" in err


def test_tracking_score_mean():
    assert TrackingScore((0.2, 0.4), 1.0).auc == pytest.approx(0.3)


def test_killed_export_leaves_no_temporary_folder(tiny_checkpoint, tiny_dataset, tmp_path, capsys, monkeypatch):
    import os
    import signal
    import tempfile

    from edgetrack.export import pipeline

    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    seen = []

    def terminated(*args, **kwargs):  # SIGTERM half-way, once the reference graphs are written
        seen.append(sorted(p.name for p in system_tmp.iterdir()))
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(pipeline, "track_sequences", terminated)
    out = tmp_path / "exports" / "onnx"
    code, _, err = _run([str(tiny_checkpoint), "--format", "onnx", "--val-data", str(tiny_dataset), "--val-frames",
                         "4", "--out", str(out), "--no-progress"], capsys)
    assert code == 130 and "interrupted" in err
    assert seen == [[]]  # the work folder lives inside the hidden staging folder, never in the system temp
    assert list(system_tmp.iterdir()) == [] and list((tmp_path / "exports").iterdir()) == []
