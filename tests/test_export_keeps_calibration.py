"""Export never makes a model worse: the source calibration travels unchanged into every exported folder and is
re-fitted only where the conversion moved the scores and real data was given; the bundled default exported to
every format and precision here tracks like the bundled model (boxes and states)."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, shared_path

pytest.importorskip("torch")
pytest.importorskip("onnx")

from edgetrack.errors import UngatedModelWarning  # noqa: E402
from edgetrack.export.cli import main as export_main  # noqa: E402
from edgetrack.export.gate import GENERATED_ONLY  # noqa: E402
from edgetrack.export.recalibrate import ScoreShift, keep_or_refit, recalibration_sequences  # noqa: E402
from edgetrack.runtime.model_files import locate  # noqa: E402
from edgetrack.runtime.spec_files import write_calibration  # noqa: E402

REAL = "uav123_10fps_bike1"  # the real frames the exports are compared on
CALIB = "otb_Bolt"  # the real sequence INT8 is calibrated (and re-fitted) on
CAL = {"features": ["peak", "psr"], "weights": [0.9, 0.2], "bias": -2.0, "lost_after": 4,
       "fitted_on": "test calibration"}


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGETRACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGETRACK_SHARED", raising=False)


def _load(folder):
    from edgetrack import Tracker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UngatedModelWarning)
        return Tracker(folder, allow_ungated=True)


def test_fp32_export_keeps_the_calibration_and_says_the_gate_data_was_generated(tiny_checkpoint, tmp_path,
                                                                                   capsys):
    source = tmp_path / "calibrated.safetensors"
    shutil.copy(tiny_checkpoint, source)
    write_calibration(source, CAL)
    for model, expected in ((tiny_checkpoint, {}), (source, locate(source).spec.calibration)):
        out = tmp_path / f"out_{Path(model).stem}"
        code = export_main([str(model), "--format", "onnx", "--val-frames", "4", "--max-drop", "1", "--out",
                            str(out), "--no-progress"])
        text = capsys.readouterr().out
        assert code == 0
        assert locate(out).spec.calibration == expected  # none stays none; a calibration travels unchanged
        report = json.loads((out / "export.json").read_text())
        assert report["confidence_calibration"]["onnx-fp32"]["status"] == "kept"
        assert report["validation"]["generated_only"] and f"note: {GENERATED_ONLY}" in report["notes"]
        assert sum("generated sequences only" in line for line in text.splitlines()) == 1


def test_moved_scores_are_refitted_only_on_data_with_boxes(tiny_onnx, tmp_path):
    from edgetrack.data.synthetic import write_dataset

    folder = tmp_path / "copy"
    shutil.copytree(tiny_onnx, folder)
    write_calibration(folder, CAL)
    before = locate(folder).spec
    still = ScoreShift(8, 0.001, 0.002, 0.001)
    moved = ScoreShift(8, 0.1, 0.3, 0.1)
    assert not still.moved and moved.moved
    kept = keep_or_refit(folder, "onnxruntime", still, (), "")
    assert kept["status"] == "kept" and "unchanged" in kept["message"]
    kept = keep_or_refit(folder, "onnxruntime", moved, *recalibration_sequences(()))
    assert kept["status"] == "kept" and "--data" in kept["message"] and locate(folder).spec == before
    data = write_dataset(tmp_path / "data", n_sequences=1, n_frames=40, size=(160, 120))
    kept = keep_or_refit(folder, "onnxruntime", moved, *recalibration_sequences((data,)))
    assert kept["status"] == "kept" and "fewer than" in kept["message"] and locate(folder).spec == before
    short = write_dataset(tmp_path / "short", n_sequences=1, n_frames=12, size=(160, 120))
    assert recalibration_sequences((short,)) == ((), "")  # too short for an absent stretch: nothing to fit on
    done = keep_or_refit(folder, "onnxruntime", moved, *recalibration_sequences((data,)), min_updates=40)
    assert done["status"] == "refitted" and done["score_shift"]["mean"] == 0.1
    after = locate(folder).spec.calibration
    assert after["fitted_on"].startswith("edgetrack-export re-calibration on --data")
    assert after["features"] == CAL["features"]


# ------------------------------------------------------------------------------------------ the bundled default
def _precisions():
    from edgetrack.export.formats import detect_platform

    ov = detect_platform().openvino
    return [("fp32", ["--format", "all"], ["onnx-fp32"] + ["openvino-fp32"] * ov),
            ("fp16", ["--format", "openvino", "--fp16"], ["openvino-fp16"] * ov),
            ("int8", ["--format", "all", "--int8"], ["onnx-int8"] + ["openvino-int8"] * ov)]


@pytest.fixture(scope="module")
def default_exports(tmp_path_factory):
    """The bundled default exported at each precision this machine offers: {label: folder}."""
    from edgetrack.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp("default_exports")
    val = write_dataset(root / "val", n_sequences=1, n_frames=6, size=(192, 144))
    data = root / "calib"
    if (SHARED / "data" / "dev-sequences" / CALIB).is_dir():
        data.mkdir()
        (data / CALIB).symlink_to(SHARED / "data" / "dev-sequences" / CALIB)
    else:
        write_dataset(data, n_sequences=1, n_frames=40, seed=3)
    folders = {}
    for precision, flags, labels in _precisions():
        if not labels:
            continue
        out = root / precision
        extra = ["--data", str(data), "--calib-pairs", "16"] if precision == "int8" else []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = export_main(["default", *flags, *extra, "--val-data", str(val), "--val-frames", "4",
                                "--out", str(out), "--no-progress"])
        assert code in (0, 1)  # a gate judging 4 generated frames may fail; the comparison below decides
        report = json.loads((out / "export.json").read_text())
        calibration = report["confidence_calibration"]
        for label in labels:
            folders[label] = out / label if flags[1] == "all" else out  # --format all: one subfolder each
            folders[label + ":calibration"] = calibration[label]
    return folders


def _run(model, frames, box) -> tuple[np.ndarray, list]:
    tracker = _load(model)
    tracker.init(frames[0], box)
    results = [tracker.update(f) for f in frames[1:]]
    return np.array([r.box for r in results]), [r.state for r in results]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter)


def _frames(kind: str):
    if kind == "generated":
        from edgetrack.data.synthetic import make_sequence

        frames, gt = make_sequence(3, n_frames=30, size=(320, 240), events=("scale",))
        return frames, gt[0]
    import cv2

    from edgetrack.data.gtfile import read_boxes

    folder = shared_path("data", "dev-sequences", REAL)
    files = sorted((folder / "img").glob("*.jpg"))[:60]
    return [cv2.imread(str(f)) for f in files], read_boxes(folder / "groundtruth_rect.txt")[0]


LABELS = ["onnx-fp32", "openvino-fp32", "openvino-fp16", "onnx-int8", "openvino-int8"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["real", "generated"])
@pytest.mark.parametrize("label", LABELS)
def test_exported_default_tracks_like_the_bundled_model(default_exports, label, kind):
    if label not in default_exports:
        pytest.skip(f"{label} cannot be written here (openvino/nncf missing)")
    frames, box = _frames(kind)
    ref_boxes, ref_states = _run("default", frames, box)
    boxes, states = _run(default_exports[label], frames, box)
    agree = float(np.mean([a is b for a, b in zip(states, ref_states)]))
    done = default_exports[label + ":calibration"]
    assert done["status"] == "kept"  # INT8 moved the scores, but one calibration sequence is too little to re-fit on
    assert locate(default_exports[label]).spec.calibration == locate("default").spec.calibration
    assert locate(default_exports[label]).spec.long_term == locate("default").spec.long_term  # the mode travels too
    if label.endswith("fp32"):
        assert agree == 1.0 and np.abs(boxes - ref_boxes).max() < 0.05
    elif label.endswith("fp16"):
        assert agree >= 0.9 and float(np.mean(_iou(boxes, ref_boxes))) >= 0.8, (agree, done["status"])
    else:  # INT8 moves the scores: the default (the searched student) agrees on 0.86 of the generated clip's states
        assert agree >= 0.8 and float(np.mean(_iou(boxes, ref_boxes))) >= 0.8, (agree, done["status"])
