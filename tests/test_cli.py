"""The ``edgetrack`` command: track, demo, import."""
import cv2
import numpy as np
import pytest
from conftest import shared_path

from edgetrack.cli.main import main


def _iou(a, b):
    x1, y1 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter)


def test_track_folder_writes_video_and_boxes(tiny_onnx, clip, tmp_path, capsys):
    frames, gt = clip
    folder = tmp_path / "seq"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i + 1:04d}.png"), f)
    out, boxes = tmp_path / "out.mp4", tmp_path / "boxes.txt"
    bbox = ",".join(str(v) for v in gt[0])
    assert main(["track", str(folder), "--bbox", bbox, "--model", str(tiny_onnx), "--out", str(out),
                 "--boxes", str(boxes), "--quiet"]) == 0
    rows = np.loadtxt(boxes, delimiter=",")
    assert rows.shape == (len(frames), 5) and np.allclose(rows[0, :4], gt[0], atol=1e-3)
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)
    assert "tracked 12 frames" in capsys.readouterr().out


def test_track_bad_arguments(tiny_onnx, tmp_path, capsys):
    assert main(["track", str(tmp_path / "none.mp4"), "--bbox", "1,2,3,4", "--model", str(tiny_onnx)]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["track", str(tmp_path), "--bbox", "1,2,3", "--model", str(tiny_onnx)]) == 2
    assert "four numbers" in capsys.readouterr().err


def test_demo_runs_on_a_given_model(tiny_onnx, tmp_path, capsys):
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--model", str(tiny_onnx), "--out", str(out), "--frames", "10"]) == 0
    text = capsys.readouterr().out
    assert "success AUC" in text and "FPS" in text and out.exists()


def test_demo_without_default_model_is_clear(capsys, monkeypatch, tmp_path):
    from edgetrack.runtime import model_files

    monkeypatch.setattr(model_files, "DEFAULT_DIR", tmp_path / "absent")
    assert main(["demo", "--out", str(tmp_path / "d.mp4")]) == 2
    assert "edgetrack import nanotrack" in capsys.readouterr().err


def test_import_export_track_pysot_bag(tmp_path, capsys):
    """End to end on a real video: import the V2 teacher, export ONNX, track pysot_bag.avi vs its ground truth."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from edgetrack.export.cli import main as export_main

    pth = shared_path("weights", "nanotrack", "nanotrackv2", "nanotrackv2.pth")
    video = shared_path("data", "videos", "pysot_bag.avi")
    gt = np.loadtxt(shared_path("data", "dev-sequences", "vot_bag", "groundtruth_rect.txt"), delimiter=",")
    ckpt = tmp_path / "v2.safetensors"
    assert main(["import", "nanotrack", str(pth), "--out", str(ckpt)]) == 0
    assert export_main([str(ckpt), "--format", "onnx", "--out", str(tmp_path / "v2"), "--val-frames", "20",
                        "--no-progress"]) == 0
    boxes = tmp_path / "bag.txt"
    bbox = ",".join(str(v) for v in gt[0])
    assert main(["track", str(video), "--bbox", bbox, "--model", str(tmp_path / "v2"), "--out",
                 str(tmp_path / "bag.mp4"), "--boxes", str(boxes), "--quiet", "--max-frames", "60"]) == 0
    pred = np.loadtxt(boxes, delimiter=",")[:, :4]
    ious = _iou(pred, gt[:len(pred)])
    assert len(pred) == 60 and np.nanmean(ious) > 0.5


def test_train_help_is_plain_text(capsys):
    pytest.importorskip("torch")
    from edgetrack.training.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "``" not in out and "prune" in out and "distill" in out


@pytest.mark.parametrize("command", ["calibrate", "tune"])
def test_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert f"edgetrack {command}:" in text
    assert "``" not in text and ":mod:" not in text and ":class:" not in text
