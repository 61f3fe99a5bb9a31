"""The backend contract: every backend gives the same boxes on the same frames as the onnxruntime reference.

One parametrised class, over every backend and every family of graph interface (NanoTrack's Siamese pair and
the one-stream ViT's template tokens); a backend whose library (or GPU) is missing skips with the reason. The
model folders are made here from the tiny checkpoints: ONNX by edgetrack.export, OpenVINO IR by
openvino.convert_model + set_rt_info + save_model, TensorRT engines by
edgetrack.export.tensorrt_export.build_engines.
"""
import numpy as np
import pytest
from conftest import mark_gated, save_openvino_ir

from edgetrack import Tracker, TrackResult
from edgetrack.errors import StateError

BACKENDS = ["onnxruntime", "torch", "openvino", "tensorrt"]
FAMILIES = {"nanotrack": "tiny_", "vit": "tiny_vit_"}  # family -> prefix of its fixtures
BOX_TOLERANCE = {"tensorrt": 0.5}  # px; TensorRT may run FP32 layers in TF32 on Ampere and newer GPUs
OUTPUT_TOLERANCE = {"tensorrt": 1e-2}  # max |diff| relative to the output's scale
BATCH = 2


def _engines(onnx_dir, tmp_path_factory):
    from edgetrack.export.tensorrt_export import build_engines, gpu_available, tensorrt_available

    if not tensorrt_available():
        pytest.skip("tensorrt backend: the 'tensorrt' package is not installed (pip install 'edgetrack[tensorrt]')")
    if not gpu_available():
        pytest.skip("tensorrt backend: no CUDA GPU answers (driver, cuda-python or pycuda missing)")
    out = tmp_path_factory.mktemp("tiny_trt") / "tiny_tensorrt"
    build_engines(onnx_dir, out, "fp32", workspace_gb=0.5, max_batch=BATCH)
    return out


@pytest.fixture(scope="session")
def tiny_engines(tiny_onnx, tmp_path_factory):
    return _engines(tiny_onnx, tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_vit_checkpoint(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from edgetrack.models import build_model
    from edgetrack.models.io import save_checkpoint
    from edgetrack.models.vit_spec import vit_spec

    torch.manual_seed(0)
    arch = dict(width=16, depth=2, heads=2, mlp_ratio=2, embed_channels=[4, 8, 16], head_channels=[8, 4])
    net = build_model(vit_spec(arch, exemplar_size=32, instance_size=64, name="tiny-vit", lost_threshold=0.0))
    return save_checkpoint(net.eval(), tmp_path_factory.mktemp("tiny_vit") / "tiny_vit.safetensors")


@pytest.fixture(scope="session")
def tiny_vit_onnx(tiny_vit_checkpoint, tmp_path_factory):
    pytest.importorskip("onnx")
    from edgetrack.export import export_onnx
    from edgetrack.models.io import load_checkpoint

    out = tmp_path_factory.mktemp("tiny_vit_onnx") / "tiny_vit_onnx"
    export_onnx(load_checkpoint(tiny_vit_checkpoint), out)
    return mark_gated(out)


@pytest.fixture(scope="session")
def tiny_vit_openvino(tiny_vit_onnx, tmp_path_factory):
    pytest.importorskip("openvino")
    from edgetrack.runtime.model_files import locate

    spec = locate(tiny_vit_onnx).spec
    return save_openvino_ir(tiny_vit_onnx, tmp_path_factory.mktemp("tiny_vit_ov") / "ov", spec.to_json())


@pytest.fixture(scope="session")
def tiny_vit_engines(tiny_vit_onnx, tmp_path_factory):
    return _engines(tiny_vit_onnx, tmp_path_factory)


@pytest.fixture(scope="session", params=list(FAMILIES))
def family(request):
    return request.param


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def make_tracker(backend, family, request):
    """A function returning a fresh Tracker of this family on this backend (skips when the backend cannot run)."""
    prefix = FAMILIES[family]
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="onnxruntime backend: onnxruntime is not installed")
        model = request.getfixturevalue(prefix + "onnx")
    elif backend == "torch":
        pytest.importorskip("torch", reason="torch backend: torch is not installed (edgetrack[train])")
        model = request.getfixturevalue(prefix + "checkpoint")
    elif backend == "openvino":
        pytest.importorskip("openvino", reason="openvino backend: openvino is not installed (edgetrack[openvino])")
        model = request.getfixturevalue(prefix + "openvino")
    else:
        model = request.getfixturevalue(prefix + "engines")
    return lambda: Tracker(model, backend=backend)


@pytest.fixture(scope="session")
def reference(family, request, clip):
    """onnxruntime's boxes on the clip and its raw outputs on fixed random inputs."""
    frames, gt = clip
    tracker = Tracker(request.getfixturevalue(FAMILIES[family] + "onnx"), backend="onnxruntime")
    boxes = _track(tracker, frames, gt[0])
    z, x = _random_inputs(tracker.spec, 1)
    zfs = tracker.backend.run_template(z)
    return boxes, zfs, tracker.backend.run_search(x, zfs)


def _track(tracker, frames, box):
    tracker.init(frames[0], box)
    return np.array([tracker.update(f).box for f in frames[1:]])


def _random_inputs(spec, batch):
    rng = np.random.default_rng(7)
    z = rng.uniform(-1, 1, (batch, 3, spec.exemplar_size, spec.exemplar_size)).astype(np.float32)
    x = rng.uniform(-1, 1, (batch, 3, spec.instance_size, spec.instance_size)).astype(np.float32)
    return z, x


def _rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(1e-6, float(np.abs(b).max())))


class TestBackendContract:
    def test_same_boxes_as_onnxruntime(self, backend, make_tracker, reference, clip):
        frames, gt = clip
        boxes = _track(make_tracker(), frames, gt[0])
        assert np.all(np.isfinite(boxes))
        assert np.abs(boxes - reference[0]).max() < BOX_TOLERANCE.get(backend, 0.05)

    def test_raw_outputs_match_in_graph_order(self, backend, make_tracker, reference):
        tracker = make_tracker()
        z, x = _random_inputs(tracker.spec, 1)
        zfs = tracker.backend.run_template(z)
        outs = tracker.backend.run_search(x, zfs)
        _, ref_zfs, ref_outs = reference
        assert len(zfs) == len(ref_zfs) and len(outs) == len(ref_outs)
        tol = OUTPUT_TOLERANCE.get(backend, 1e-3)
        for got, ref in zip([*zfs, *outs], [*ref_zfs, *ref_outs]):
            assert got.shape == ref.shape and got.dtype == np.float32
            assert _rel(got, ref) < tol

    def test_result_fields(self, make_tracker, clip):
        frames, gt = clip
        tracker = make_tracker()
        tracker.init(frames[0], gt[0])
        assert tracker.init_ms > 0
        for frame in frames[1:4]:
            res = tracker.update(frame)
            assert isinstance(res, TrackResult)
            assert len(res.box) == 4 and all(isinstance(v, float) for v in res.box)
            assert isinstance(res.score, float) and 0.0 <= res.score <= 1.0
            assert res.latency_ms > 0 and isinstance(res.lost, bool)

    def test_update_before_init(self, make_tracker, clip):
        with pytest.raises(StateError, match="before init"):
            make_tracker().update(clip[0][0])

    def test_batched_search(self, make_tracker):
        tracker = make_tracker()
        z, x = _random_inputs(tracker.spec, BATCH)
        zfs = tracker.backend.run_template(z)
        outs = tracker.backend.run_search(x, zfs)
        assert all(o.shape[0] == BATCH for o in [*zfs, *outs])
        one = tracker.backend.run_search(x[1:], tracker.backend.run_template(z[1:]))
        for batched, single in zip(outs, one):
            assert _rel(batched[1:], single) < 1e-3

    def test_reinit_uses_the_new_template(self, make_tracker, clip):
        frames, gt = clip
        tracker = make_tracker()
        first = _track(tracker, frames[:4], gt[0])
        again = _track(tracker, frames[:4], gt[0])
        assert np.abs(first - again).max() < 1e-4
