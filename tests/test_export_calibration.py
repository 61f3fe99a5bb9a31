"""Calibration pairs for INT8 export: shapes, normalisation, determinism, the cache, videos."""
import shutil

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edgetrack.errors import DataError  # noqa: E402
from edgetrack.export.calibration import (  # noqa: E402
    CalibrationConfig,
    build_calibration_set,
    cache_path,
    cache_root,
)
from edgetrack.runtime.model_files import locate  # noqa: E402


@pytest.fixture
def template_fn(tiny_onnx):
    sess = ort.InferenceSession(str(tiny_onnx / "template.onnx"), providers=["CPUExecutionProvider"])
    return lambda z: sess.run(None, {"z": z})


def build(tiny_checkpoint, tiny_onnx, data, template_fn, tmp_path, **kw):
    config = CalibrationConfig(n_pairs=kw.pop("n_pairs", 10), cache_dir=tmp_path / "cache", progress=False, **kw)
    return build_calibration_set(locate(tiny_onnx).spec, tiny_checkpoint, tuple(data), template_fn, ("zf",), config)


def test_shapes_and_template_tensors(tiny_checkpoint, tiny_onnx, tiny_dataset, template_fn, tmp_path):
    cs = build(tiny_checkpoint, tiny_onnx, [tiny_dataset], template_fn, tmp_path)
    assert cs.n_pairs == 10 and not cs.from_cache
    assert set(cs.template_inputs) == {"z"} and set(cs.search_inputs) == {"x", "zf"}
    assert cs.template_inputs["z"].shape == (10, 3, 127, 127)
    assert cs.search_inputs["x"].shape == (10, 3, 255, 255)
    assert cs.search_inputs["zf"].shape[0] == 10
    assert all(a.dtype == np.float32 for a in (*cs.template_inputs.values(), *cs.search_inputs.values()))
    # the template tensors are the FP32 template graph's output on each pair's own template crop
    np.testing.assert_allclose(cs.search_inputs["zf"][:3], template_fn(cs.template_inputs["z"][:3])[0],
                               rtol=1e-5, atol=1e-5)
    assert cs.search_inputs["x"].max() > 1.0  # tiny spec: raw 0-255 pixels (mean 0, std 1)
    batches = list(cs.search_batches(4))
    assert [len(b["x"]) for b in batches] == [4, 4, 2] and set(batches[0]) == {"x", "zf"}


def test_deterministic_and_cached(tiny_checkpoint, tiny_onnx, tiny_dataset, template_fn, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    first = build(tiny_checkpoint, tiny_onnx, [data], template_fn, tmp_path)
    other = build(tiny_checkpoint, tiny_onnx, [data], template_fn, tmp_path / "elsewhere")
    for key in first.search_inputs:
        np.testing.assert_array_equal(first.search_inputs[key], other.search_inputs[key])
    reseeded = build(tiny_checkpoint, tiny_onnx, [data], template_fn, tmp_path, seed=1)
    assert not np.array_equal(reseeded.search_inputs["x"], first.search_inputs["x"])
    shutil.rmtree(data)  # a cache hit reads no frame
    again = build(tiny_checkpoint, tiny_onnx, [data], template_fn, tmp_path)
    assert again.from_cache
    np.testing.assert_array_equal(again.search_inputs["x"], first.search_inputs["x"])
    np.testing.assert_array_equal(again.template_inputs["z"], first.template_inputs["z"])


def test_cache_location(monkeypatch, tmp_path, tiny_checkpoint, tiny_onnx):
    monkeypatch.setenv("EDGETRACK_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    spec = locate(tiny_onnx).spec
    path = cache_path(spec, tiny_checkpoint, (tmp_path,), CalibrationConfig(n_pairs=5))
    assert path.parent == tmp_path / "c" / "calib" and path.suffix == ".npz"
    assert path != cache_path(spec, tiny_checkpoint, (tmp_path,), CalibrationConfig(n_pairs=6))


def test_video_source(tiny_checkpoint, tiny_onnx, tmp_path, template_fn):
    cv2 = pytest.importorskip("cv2")
    from edgetrack import Tracker
    from edgetrack.data.synthetic import make_sequence

    frames, _ = make_sequence(5, n_frames=10, size=(160, 120))
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write MJPG video here")
    for frame in frames:
        writer.write(frame)
    writer.release()
    config = CalibrationConfig(n_pairs=4, cache_dir=tmp_path / "cache", progress=False)
    spec = locate(tiny_onnx).spec
    with pytest.raises(DataError, match="tracker"):
        build_calibration_set(spec, tiny_checkpoint, (video,), template_fn, ("zf",), config)
    cs = build_calibration_set(spec, tiny_checkpoint, (video,), template_fn, ("zf",), config,
                               make_tracker=lambda: Tracker(tiny_onnx))
    assert cs.search_inputs["x"].shape == (4, 3, 255, 255)


def test_no_usable_data(tiny_checkpoint, tiny_onnx, tmp_path, template_fn):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError):
        build(tiny_checkpoint, tiny_onnx, [tmp_path / "empty"], template_fn, tmp_path)


def test_labelled_video_folder(tiny_checkpoint, tiny_onnx, tmp_path, template_fn):
    """A pool folder (videos + box files + MANIFEST.tsv) reads as sequences: pairs cut on its boxes, no tracker
    needed (it was taken for a path and failed with 'cannot read this video')."""
    from test_data_videos import H, W, boxes, write_boxes, write_clip, write_manifest

    pool = tmp_path / "pool"
    pool.mkdir()
    write_clip(pool / "otb_a.avi")
    write_boxes(pool / "otb_a.txt", boxes(12))
    write_manifest(pool, [("otb_a", "otb_a.avi", 12, W, H, "yes", "no", "OTB a", "train")])
    config = CalibrationConfig(n_pairs=3, cache_dir=tmp_path / "cache", progress=False)
    cs = build_calibration_set(locate(tiny_onnx).spec, tiny_checkpoint, (pool,), template_fn, ("zf",), config)
    assert cs.search_inputs["x"].shape[0] == 3
