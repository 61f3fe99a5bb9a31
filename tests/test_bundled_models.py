"""Bundled models by name, and a check that every one of them still tracks a real (or generated) clip."""
import logging
import shutil

import numpy as np
import pytest
from conftest import SHARED

import edgetrack
from edgetrack import ModelNotFoundError, Tracker, list_models
from edgetrack.runtime.model_files import default_model_dir, locate

# Mean IoU over the clip's frames after the first. Measured for the bundled default: 0.665 on the first 60
# frames of vot_bag (a tracker that never moves gets 0.145) and 0.591 on synthetic seed 1 (never moving: 0.027).
REAL_CLIP, REAL_FRAMES, REAL_MIN_IOU = "vot_bag", 60, 0.48
SYNTHETIC_SEED, SYNTHETIC_FRAMES, SYNTHETIC_MIN_IOU = 1, 60, 0.42

has_default = pytest.mark.skipif(not (default_model_dir() / "search.onnx").exists(),
                                 reason="this build bundles no default model")


def _clip():
    """(frames, gt, threshold, where): the real dev clip when ../shared is there, else a generated one."""
    folder = SHARED / "data" / "dev-sequences" / REAL_CLIP
    if folder.is_dir():
        import cv2

        from edgetrack.data.gtfile import read_boxes

        files = sorted((folder / "img").glob("*.jpg"))[:REAL_FRAMES]
        frames = [cv2.imread(str(f)) for f in files]
        gt = read_boxes(folder / "groundtruth_rect.txt")[:REAL_FRAMES]
        return frames, gt, REAL_MIN_IOU, REAL_CLIP
    from edgetrack.data.synthetic import make_sequence

    frames, gt = make_sequence(SYNTHETIC_SEED, n_frames=SYNTHETIC_FRAMES, size=(320, 240), events=("scale",))
    return frames, gt, SYNTHETIC_MIN_IOU, f"synthetic seed {SYNTHETIC_SEED}"


@pytest.mark.parametrize("name", list(list_models()) or [pytest.param("default", marks=has_default)])
def test_bundled_model_tracks(name):
    from edgetrack.evaluation.metrics import iou

    frames, gt, threshold, where = _clip()
    tracker = Tracker(name)
    tracker.init(frames[0], gt[0])
    pred = np.array([tracker.update(f).box for f in frames[1:]])
    score = float(np.nanmean(iou(pred, gt[1:])))
    assert score >= threshold, f"{name} tracks {where} at mean IoU {score:.3f} (< {threshold})"


@has_default
def test_names_resolve(tmp_path, monkeypatch):
    models = list_models()
    assert "default" in models and models["default"]  # described from provenance.json
    assert Tracker("accurate").files.root == Tracker().files.root == default_model_dir()
    assert locate("accurate").name == "accurate" and locate(None).name == "default"
    assert "fast" in models and locate("fast").root != default_model_dir()  # the smaller student, by name
    with pytest.raises(ModelNotFoundError, match="bundled models: default"):
        Tracker("slow")
    # an existing path wins over a bundled name
    monkeypatch.chdir(tmp_path)
    shutil.copytree(default_model_dir(), tmp_path / "fast")
    files = locate("fast")
    assert files.root.resolve() == (tmp_path / "fast").resolve() and files.name == ""


def test_unknown_name_lists_the_bundled_models():
    with pytest.raises(ModelNotFoundError, match="edgetrack models"):
        locate("no_such_model")
    with pytest.raises(ModelNotFoundError, match="model not found"):
        locate("no/such/model.safetensors")


@has_default
def test_load_log_and_warmup(caplog, clip):
    with caplog.at_level(logging.INFO, logger="edgetrack"):
        tracker = Tracker("fast")
    assert "loading fast with backend onnxruntime on CPUExecutionProvider" in caplog.text
    assert tracker.warmup() > 0 and not tracker.initialized
    frames, gt = clip
    tracker.init(frames[0], gt[0])
    assert np.isfinite(tracker.update(frames[1]).box).all()


@has_default
def test_models_command(capsys):
    from edgetrack.cli.main import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("default (accurate)") and edgetrack.list_models()["default"][:20] in out
