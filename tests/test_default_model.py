"""The bundled default student: Tracker() works out of the box, and 'default' names it everywhere."""
import numpy as np
import pytest

from edgetrack import Tracker
from edgetrack.runtime.model_files import default_model_dir

pytestmark = pytest.mark.skipif(not (default_model_dir() / "search.onnx").exists(),
                                reason="this build bundles no default model")


def test_tracker_without_arguments_tracks(clip):
    frames, gt = clip
    tracker = Tracker()
    assert tracker.backend.name == "onnxruntime" and tracker.spec.family == "nanotrack"
    assert Tracker("default").files.root == tracker.files.root
    tracker.init(frames[0], gt[0])
    boxes = np.array([tracker.update(f).box for f in frames[1:]])
    assert np.all(np.isfinite(boxes)) and np.all(boxes[:, 2:] > 0)


def test_bundled_files_agree(tmp_path):
    from edgetrack.checkpoint import read_spec

    spec = read_spec(default_model_dir() / "model.safetensors")
    assert Tracker().spec == spec
    assert (default_model_dir() / "provenance.json").exists()


def test_export_default(tmp_path, capsys):
    pytest.importorskip("onnx")
    from edgetrack.export.cli import main

    assert main(["default", "--format", "onnx", "--out", str(tmp_path / "d"), "--val-frames", "20",
                 "--no-progress"]) == 0
    assert (tmp_path / "d" / "search.onnx").exists()


def test_demo_runs_on_the_default(tmp_path, capsys):
    from edgetrack.cli.main import main

    assert main(["demo", "--out", str(tmp_path / "demo.mp4"), "--frames", "12"]) == 0
    assert "success AUC" in capsys.readouterr().out
