"""The runtime must track without torch: block the import in a fresh interpreter and track a clip."""
from conftest import run_python


def test_tracks_with_torch_blocked(tiny_onnx):
    code = f"""
        import sys
        sys.modules["torch"] = None  # any 'import torch' now raises ImportError
        import numpy as np
        import edgetrack
        from edgetrack import Tracker
        from edgetrack.data.synthetic import make_sequence
        from edgetrack.evaluation.metrics import score_sequence
        frames, gt = make_sequence(5, n_frames=8, size=(200, 160), events=())
        tracker = Tracker({str(tiny_onnx)!r})
        assert tracker.backend.name == "onnxruntime"
        tracker.init(frames[0], gt[0])
        boxes = [gt[0]] + [tracker.update(f).box for f in frames[1:]]
        assert np.all(np.isfinite(boxes))
        score_sequence(np.array(boxes), gt)
        try:
            Tracker({str(tiny_onnx)!r}, backend="torch")
        except edgetrack.ModelError as exc:
            print("torch backend refused:", exc)
        except edgetrack.BackendUnavailableError as exc:
            print("torch backend unavailable:", exc)
        loaded = [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
        assert sys.modules["torch"] is None and len(loaded) == 1, loaded
        print("ok")
    """
    assert run_python(code).endswith("ok")


def test_torch_backend_names_the_extra(tiny_checkpoint):
    code = f"""
        import sys
        sys.modules["torch"] = None
        from edgetrack import Tracker, BackendUnavailableError
        try:
            Tracker({str(tiny_checkpoint)!r})
        except BackendUnavailableError as exc:
            assert "edgetrack[train]" in str(exc), exc
            print("ok")
    """
    assert run_python(code) == "ok"


def test_openvino_backend_tracks_with_torch_blocked(tiny_openvino):
    code = f"""
        import sys
        sys.modules["torch"] = None
        import numpy as np
        from edgetrack import Tracker
        from edgetrack.data.synthetic import make_sequence
        frames, gt = make_sequence(5, n_frames=6, size=(200, 160), events=())
        tracker = Tracker({str(tiny_openvino)!r})
        assert tracker.backend.name == "openvino"
        tracker.init(frames[0], gt[0])
        assert np.all(np.isfinite([tracker.update(f).box for f in frames[1:]]))
        loaded = [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
        assert sys.modules["torch"] is None and len(loaded) == 1, loaded
        print("ok")
    """
    assert run_python(code).endswith("ok")
