"""TensorRT without a GPU: errors that name the extra, the engine-cache key, spec.json checks, and the backend and
builder code paths run against stand-ins (tests/fake_tensorrt.py) for tensorrt and cuda-python."""
import importlib.util
import json
import sys
import types

import numpy as np
import pytest
from conftest import mark_gated

from edgetrack import Tracker
from edgetrack.errors import BackendUnavailableError, InputError, ModelError
from edgetrack.runtime.backends import _trt_common as common
from edgetrack.runtime.model_files import locate

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
TARGET = common.BuildTarget("NVIDIA Jetson AGX Orin", "8.7", "8.5.2")


def _track(tracker, frames, box):
    tracker.init(frames[0], box)
    return np.array([tracker.update(f).box for f in frames[1:]])


# ----------------------------------------------------------------------------- no TensorRT here
@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed on this machine")
def test_backend_names_the_extra(tiny_onnx):
    with pytest.raises(BackendUnavailableError, match=r"edgetrack\[tensorrt\]") as err:
        Tracker(tiny_onnx, backend="tensorrt")
    assert "CUDA GPU" in str(err.value)


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed on this machine")
def test_build_engines_names_the_extra(tiny_onnx, tmp_path):
    from edgetrack.export.tensorrt_export import build_engines, gpu_available, tensorrt_available

    assert tensorrt_available() is False and isinstance(gpu_available(), bool)
    with pytest.raises(BackendUnavailableError, match=r"edgetrack\[tensorrt\]"):
        build_engines(tiny_onnx, tmp_path / "trt", "fp16")
    assert not (tmp_path / "trt").exists()


def test_build_engines_rejects_bad_arguments(tiny_onnx, tmp_path):
    from edgetrack.export.tensorrt_export import build_engines

    with pytest.raises(InputError, match="precision"):
        build_engines(tiny_onnx, tmp_path, "int4")
    with pytest.raises(InputError, match="DLA runs FP16 or INT8"):
        build_engines(tiny_onnx, tmp_path, "fp32", dla_core=0)
    with pytest.raises(InputError, match="max_batch"):
        build_engines(tiny_onnx, tmp_path, "fp16", max_batch=0)
    with pytest.raises(InputError, match="no dynamic shapes"):
        build_engines(tiny_onnx, tmp_path, "fp16", dla_core=0, max_batch=2)


# ----------------------------------------------------------------------------- pure helpers
def test_engine_cache_key_changes_with_what_makes_an_engine():
    graphs = [b"template-onnx", b"search-onnx"]
    fp16 = common.BuildOptions("fp16")
    key = common.engine_cache_key(graphs, TARGET, fp16)
    assert key == common.engine_cache_key(list(graphs), TARGET, fp16)
    assert key == common.engine_cache_key(graphs, TARGET, common.BuildOptions("fp16", workspace_gb=4.0))
    others = [
        common.engine_cache_key(graphs, common.BuildTarget("NVIDIA GeForce RTX 4090", "8.7", "8.5.2"), fp16),
        common.engine_cache_key(graphs, common.BuildTarget(TARGET.gpu, "8.9", "8.5.2"), fp16),
        common.engine_cache_key(graphs, common.BuildTarget(TARGET.gpu, "8.7", "10.3.0"), fp16),
        common.engine_cache_key(graphs, TARGET, common.BuildOptions("fp32")),
        common.engine_cache_key(graphs, TARGET, common.BuildOptions("int8")),
        common.engine_cache_key(graphs, TARGET, common.BuildOptions("fp16", dla_core=0)),
        common.engine_cache_key(graphs, TARGET, common.BuildOptions("fp16", max_batch=4)),
        common.engine_cache_key([b"template-onnx", b"search-onnx v2"], TARGET, fp16),
    ]
    assert len({key, *others}) == 1 + len(others)


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGETRACK_CACHE", str(tmp_path))
    assert common.cache_root() == tmp_path / "engines"
    monkeypatch.delenv("EDGETRACK_CACHE")
    assert common.cache_root().parts[-3:] == (".cache", "edgetrack", "engines")


def test_target_mismatch_says_what_differs():
    build = {"gpu": TARGET.gpu, "compute_capability": "8.7", "tensorrt": "8.5.2", "precision": "fp16"}
    assert common.target_mismatch(build, TARGET) is None
    why = common.target_mismatch({**build, "tensorrt": "8.6.2"}, TARGET)
    assert "TensorRT 8.6.2" in why and "TensorRT 8.5.2" in why
    assert "does not say" in common.target_mismatch({"precision": "fp16"}, TARGET)


@pytest.mark.parametrize("device, index", [("cpu", 0), ("cuda", 0), ("cuda:1", 1), ("GPU:2", 2), (3, 3)])
def test_parse_cuda_device(device, index):
    assert common.parse_cuda_device(device) == index


def test_parse_cuda_device_rejects_others():
    with pytest.raises(InputError, match="not a CUDA device"):
        common.parse_cuda_device("npu")


# ----------------------------------------------------------------------------- engine folders
def _engine_folder(tmp_path, tiny_onnx, build, with_onnx=False, name="engines"):
    folder = tmp_path / name
    folder.mkdir()
    for graph in ("template", "search"):
        (folder / f"{graph}.engine").write_bytes(b"not an engine")
        if with_onnx:
            (folder / f"{graph}.onnx").write_bytes((tiny_onnx / f"{graph}.onnx").read_bytes())
    spec = locate(tiny_onnx).spec
    (folder / "spec.json").write_text(json.dumps({"spec": spec.to_dict(), "build": build}))
    return mark_gated(folder)


def test_engine_folder_is_read_without_tensorrt(tiny_onnx, tmp_path):
    folder = _engine_folder(tmp_path, tiny_onnx, {"gpu": "x", "compute_capability": "8.7", "tensorrt": "10.3"},
                            with_onnx=True)
    files = locate(folder)
    assert files.formats == ("onnx", "tensorrt") and files.spec == locate(tiny_onnx).spec
    if not HAS_TRT:
        assert Tracker(folder).backend.name == "onnxruntime"  # auto passes over engines it cannot run
        with pytest.raises(BackendUnavailableError, match="tensorrt"):
            Tracker(_engine_folder(tmp_path, tiny_onnx, {}, name="only_engines"))


def test_engine_spec_json_must_agree_with_the_graphs(tiny_onnx, tmp_path):
    from edgetrack.errors import SpecError

    folder = _engine_folder(tmp_path, tiny_onnx, {}, with_onnx=True)
    spec = locate(tiny_onnx).spec.with_(lr=0.1)
    (folder / "spec.json").write_text(json.dumps({"spec": spec.to_dict(), "build": {}}))
    with pytest.raises(SpecError, match="different spec"):
        locate(folder)


# ----------------------------------------------------------------------------- stand-in TensorRT + CUDA
@pytest.fixture
def fake_gpu(monkeypatch, tmp_path):
    """Install the stand-ins; returns a function (version, binding_api, gpu, qdq) -> the fake tensorrt module."""
    pytest.importorskip("onnxruntime")
    import fake_tensorrt

    monkeypatch.setenv("EDGETRACK_CACHE", str(tmp_path / "cache"))

    def install(version="10.3.0", binding_api=False, gpu="Fake Orin", qdq=False):
        trt = fake_tensorrt.make_tensorrt(version, binding_api, qdq)
        rt = fake_tensorrt.make_cudart(gpu)
        cuda, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
        bindings.runtime, cuda.bindings = rt, bindings
        for name, module in (("tensorrt", trt), ("cuda", cuda), ("cuda.bindings", bindings),
                             ("cuda.bindings.runtime", rt)):
            monkeypatch.setitem(sys.modules, name, module)
        return trt

    return install


@pytest.mark.parametrize("binding_api", [False, True], ids=["tensor-api", "binding-api"])
def test_engines_track_like_onnxruntime(fake_gpu, binding_api, tiny_onnx, tmp_path, clip):
    from edgetrack.export.tensorrt_export import build_engines

    trt = fake_gpu("8.2.1" if binding_api else "10.3.0", binding_api)
    result = build_engines(tiny_onnx, tmp_path / "trt", "fp16", max_batch=2)
    mark_gated(tmp_path / "trt")
    info = json.loads((tmp_path / "trt" / "spec.json").read_text())["build"]
    assert info == result["build"] and info["gpu"] == "Fake Orin" and info["compute_capability"] == "8.7"
    assert info["precision"] == "fp16" and info["max_batch"] == 2
    assert all(trt.BuilderFlag.FP16 in c.flags for c in trt.built)
    frames, gt = clip
    tracker = Tracker(tmp_path / "trt")
    assert tracker.backend.name == "tensorrt"
    ref = _track(Tracker(tiny_onnx, backend="onnxruntime"), frames, gt[0])
    assert np.abs(_track(tracker, frames, gt[0]) - ref).max() < 1e-3
    z = np.zeros((3, 3, 127, 127), np.float32)
    with pytest.raises(InputError, match="larger than"):
        tracker.backend.run_template(z)


def test_template_tensors_stay_on_the_device(fake_gpu, tiny_onnx, tmp_path):
    from edgetrack.export.tensorrt_export import build_engines

    fake_gpu()
    build_engines(tiny_onnx, tmp_path / "trt", "fp32")
    mark_gated(tmp_path / "trt")
    backend = Tracker(tmp_path / "trt").backend
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, (1, 3, 127, 127)).astype(np.float32)
    x = rng.uniform(-1, 1, (1, 3, 255, 255)).astype(np.float32)
    zfs = backend.run_template(z)
    kept = backend.run_search(x, zfs)
    copied = backend.run_search(x, [zf.copy() for zf in zfs])
    assert backend._zf_feed(0, zfs[0]).__class__.__name__ == "_OnDevice"
    assert all(np.array_equal(a, b) for a, b in zip(kept, copied))
    assert not zfs[0].flags.writeable


def test_onnx_folder_builds_engines_once_into_the_cache(fake_gpu, tiny_onnx, tmp_path):
    trt = fake_gpu()
    Tracker(tiny_onnx, backend="tensorrt")
    Tracker(tiny_onnx, backend="tensorrt")
    assert len(trt.built) == 2  # template + search, built on the first Tracker only
    (folder,) = (tmp_path / "cache" / "engines").iterdir()
    assert json.loads((folder / "spec.json").read_text())["build"]["precision"] == "fp32"


def test_engines_from_another_gpu(fake_gpu, tiny_onnx, tmp_path):
    from edgetrack.export.tensorrt_export import build_engines

    fake_gpu(gpu="Fake Xavier")
    build_engines(tiny_onnx, tmp_path / "trt", "fp16")
    mark_gated(tmp_path / "trt")
    mark_gated(tmp_path / "trt")
    fake_gpu(gpu="Fake Orin")
    with pytest.raises(ModelError, match="built for Fake Xavier.*edgetrack-export"):
        Tracker(tmp_path / "trt")
    for graph in ("template", "search"):  # with the ONNX beside them, they are rebuilt into the cache
        (tmp_path / "trt" / f"{graph}.onnx").write_bytes((tiny_onnx / f"{graph}.onnx").read_bytes())
    with pytest.warns(UserWarning, match="building engines"):
        tracker = Tracker(tmp_path / "trt", backend="tensorrt")
    assert tracker.backend.folder.parent == tmp_path / "cache" / "engines"


def test_int8_calibrated_and_explicit(fake_gpu, tiny_onnx, tmp_path):
    from edgetrack.export.tensorrt_export import build_engines

    trt = fake_gpu()
    with pytest.raises(InputError, match="calibration data"):
        build_engines(tiny_onnx, tmp_path / "none", "int8")
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, (3, 3, 127, 127)).astype(np.float32)
    zfs = Tracker(tiny_onnx).backend.run_template(z)
    calib = types.SimpleNamespace(template_inputs={"z": z}, search_inputs={
        "x": rng.uniform(-1, 1, (3, 3, 255, 255)).astype(np.float32), "zf": zfs[0]})
    result = build_engines(tiny_onnx, tmp_path / "int8", "int8", calib=calib)
    assert result["build"]["precision"] == "int8"
    assert [p.name for p in result["calibration_caches"]] == ["template.calib.cache", "search.calib.cache"]
    assert (tmp_path / "int8" / "search.calib.cache").read_bytes() == b"calibrated on 3"
    assert all(trt.BuilderFlag.INT8 in c.flags and c.int8_calibrator is not None for c in trt.built)
    trt = fake_gpu(qdq=True)
    result = build_engines(tiny_onnx, tmp_path / "qdq", "fp16")
    assert result["build"]["precision"] == "int8" and all(c.int8_calibrator is None for c in trt.built)


def test_dla_settings(fake_gpu, tiny_onnx, tmp_path):
    from edgetrack.export.tensorrt_export import build_engines

    trt = fake_gpu()
    build_engines(tiny_onnx, tmp_path / "dla", "fp16", dla_core=1)
    config = trt.built[-1]
    assert config.default_device_type == trt.DeviceType.DLA and config.DLA_core == 1
    assert trt.BuilderFlag.GPU_FALLBACK in config.flags
    with pytest.raises(InputError, match="DLA core 2 does not exist"):
        build_engines(tiny_onnx, tmp_path / "dla2", "fp16", dla_core=2)
