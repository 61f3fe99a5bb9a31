"""MultiTracker: N targets in one batched search call give what N single Trackers give; ids, errors, close."""
import json
import threading

import numpy as np
import pytest
from conftest import mark_gated, shared_path
from test_tensorrt import fake_gpu  # noqa: F401  (a fixture, used by name)

from edgetrack import MultiTracker, Tracker, TrackResult
from edgetrack.errors import BoxError, FrameError, InputError, ModelError, StateError

TOL = 1e-3  # px and score: the batched call may round differently from batch 1


def _boxes(first):
    """Three starting boxes: the target and two neighbouring patches of the frame."""
    x, y, w, h = (float(v) for v in first)
    return [(x, y, w, h), (x + 0.4 * w, y + 0.3 * h, 0.8 * w, 0.9 * h), (max(0.0, x - 0.5 * w), y, 1.1 * w, h)]


def _singles(model, frames, boxes, **kwargs):
    out = []
    for box in boxes:
        tracker = Tracker(model, **kwargs)
        tracker.init(frames[0], box)
        out.append([[*r.box, r.score] for r in map(tracker.update, frames[1:])])
    return np.array(out)  # (targets, frames, 5)


def _multi(model, frames, boxes, **kwargs):
    mt = MultiTracker(model, **kwargs)
    ids = [mt.add(frames[0], box) for box in boxes]
    rows = []
    for frame in frames[1:]:
        res = mt.update(frame)
        assert list(res) == ids and all(isinstance(r, TrackResult) for r in res.values())
        rows.append([[*res[i].box, res[i].score] for i in ids])
    return np.array(rows).transpose(1, 0, 2)


def _same(model, frames, boxes, **kwargs):
    ref, got = _singles(model, frames, boxes, **kwargs), _multi(model, frames, boxes, **kwargs)
    assert np.all(np.isfinite(got)) and np.abs(got - ref).max() < TOL


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "torch"])
def test_n_targets_equal_n_trackers(backend, request, clip):
    pytest.importorskip(backend)
    model = request.getfixturevalue("tiny_checkpoint" if backend == "torch" else "tiny_onnx")
    frames, gt = clip
    _same(model, frames[:6], _boxes(gt[0]), backend=backend)


@pytest.mark.parametrize("family", ["siamrpn-dwxcorr", "siamfc"])
def test_other_families_batch_too(family, tmp_path, clip):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from edgetrack.export import export_onnx
    from edgetrack.models import build_model
    from edgetrack.models.siamfc import siamfc_spec
    from edgetrack.models.siamrpn import siamrpn_spec

    spec = siamfc_spec(width=0.25) if family == "siamfc" else siamrpn_spec(width=0.25, head="dwxcorr")
    torch.manual_seed(0)
    folder = mark_gated(export_onnx(build_model(spec).eval(), tmp_path / "onnx").folder)
    frames, gt = clip
    _same(folder, frames[:4], _boxes(gt[0]))  # SiamFC: 3 targets x 3 scales in one call of batch 9


def test_real_frames_default_model():
    import cv2

    from edgetrack.data.gtfile import read_boxes

    seq = shared_path("data", "dev-sequences", "uav123_10fps_car10")
    frames = [cv2.imread(str(f)) for f in sorted((seq / "img").glob("*.jpg"))[:8]]
    _same(None, frames, _boxes(read_boxes(seq / "groundtruth_rect.txt")[0]))


def test_add_remove_and_ids(tiny_onnx, clip):
    frames, gt = clip
    boxes = _boxes(gt[0])
    with MultiTracker(tiny_onnx) as mt:
        assert mt.update(frames[1]) == {} and len(mt) == 0
        a, b = mt.add(frames[0], boxes[0]), mt.add(frames[0], boxes[1])
        assert (a, b) == (1, 2) and mt.ids == (1, 2) and a in mt and len(mt) == 2
        mt.remove(a)
        assert a not in mt and list(mt.update(frames[1])) == [b]
        c = mt.add(frames[1], boxes[2])  # a target appearing later: on the frame it appears in
        assert c == 3 and list(mt.update(frames[2])) == [b, c]
        mt.remove(b)
        mt.remove(np.int64(c))
        assert mt.ids == () and mt.update(frames[3]) == {}
        assert mt.add(frames[3], boxes[0]) == 4  # ids are never reused


def test_target_added_later_tracks_like_its_own_tracker(tiny_onnx, clip):
    frames, gt = clip
    boxes = _boxes(gt[0])
    mt = MultiTracker(tiny_onnx)
    mt.add(frames[0], boxes[0])
    mt.update(frames[1])
    late = mt.add(frames[1], boxes[1])
    single = Tracker(tiny_onnx)
    single.init(frames[1], boxes[1])
    for frame in frames[2:5]:
        got, ref = mt.update(frame)[late], single.update(frame)
        assert np.abs(np.subtract(got.box, ref.box)).max() < TOL and abs(got.score - ref.score) < TOL


def test_errors_for_bad_ids_boxes_and_frames(tiny_onnx, clip):
    frames, gt = clip
    mt = MultiTracker(tiny_onnx)
    target = mt.add(frames[0], gt[0])
    for bad in (99, 0, "1", 1.0, True, None):
        with pytest.raises(InputError, match="target"):
            mt.remove(bad)
    for box in ((0, 0, -5, 10), (1e4, 1e4, 10, 10), (0, 0, 1e200, 5), "abcd", (1, 2, 3)):
        with pytest.raises(BoxError):
            mt.add(frames[0], box)
    with pytest.raises(FrameError):
        mt.update(frames[1].astype(np.float32))
    with pytest.raises(FrameError):
        mt.add(np.zeros((5, 5), np.uint8), gt[0])
    smaller = np.ascontiguousarray(frames[1][:100, :120])
    with pytest.raises(FrameError, match="120x100"):
        mt.update(smaller)
    with pytest.raises(FrameError, match="120x100"):
        mt.add(smaller, (10, 10, 20, 20))
    assert mt.ids == (target,)  # nothing was added or lost by the failed calls
    mt.remove(target)
    assert mt.add(smaller, (10, 10, 20, 20)) == 2  # a new size once every target is gone
    with pytest.raises(InputError, match="targets"):
        mt.warmup(0)
    assert mt.warmup(3) > 0


def test_close_and_context_manager(tiny_onnx, clip):
    frames, gt = clip
    with MultiTracker(tiny_onnx) as mt:
        mt.add(frames[0], gt[0])
        assert "MultiTracker(" in repr(mt) and mt.backend is not None
    assert "closed" in repr(mt)
    for call in (lambda: mt.update(frames[1]), lambda: mt.add(frames[0], gt[0]), lambda: mt.remove(1)):
        with pytest.raises(StateError, match="closed"):
            call()
    mt.close()  # twice is harmless
    with Tracker(tiny_onnx) as tracker:
        tracker.init(frames[0], gt[0])
        tracker.update(frames[1])
    with pytest.raises(StateError, match="closed"):
        tracker.update(frames[2])
    with pytest.raises(StateError, match="closed"):
        tracker.warmup()


def test_one_multitracker_from_two_threads_at_once_raises(tiny_onnx, clip):
    frames, gt = clip
    mt = MultiTracker(tiny_onnx)
    mt.add(frames[0], gt[0])
    entered, release, run = threading.Event(), threading.Event(), mt.backend.run_search

    def held_search(x, zfs):  # the search call waits until the other thread has tried its calls
        entered.set()
        release.wait(30)
        return run(x, zfs)

    mt.backend.run_search = held_search
    results = []
    worker = threading.Thread(target=lambda: results.append(mt.update(frames[1])))
    worker.start()
    assert entered.wait(30)
    for call in (lambda: mt.update(frames[1]), lambda: mt.add(frames[0], gt[0]), lambda: mt.remove(1), mt.close):
        with pytest.raises(StateError, match="another thread"):
            call()
    release.set()
    worker.join(30)
    assert len(results) == 1 and list(results[0]) == [1]


def test_one_search_call_per_update(tiny_onnx, clip):
    frames, gt = clip
    mt = MultiTracker(tiny_onnx)
    for box in _boxes(gt[0]):
        mt.add(frames[0], box)
    batches, run = [], mt.backend.run_search

    def counted_search(x, zfs):
        batches.append((x.shape[0], [zf.shape[0] for zf in zfs]))
        return run(x, zfs)

    mt.backend.run_search = counted_search
    mt.update(frames[1])
    assert batches == [(3, [3])]


def test_static_batch_graphs_say_what_to_do(tiny_checkpoint, tmp_path, clip):
    pytest.importorskip("onnx")
    from edgetrack.export import export_onnx
    from edgetrack.models.io import load_checkpoint

    folder = mark_gated(export_onnx(load_checkpoint(tiny_checkpoint), tmp_path / "static", dynamic_batch=False).folder)
    frames, gt = clip
    mt = MultiTracker(folder, backend="onnxruntime")
    first = mt.add(frames[0], gt[0])
    assert list(mt.update(frames[1])) == [first]  # one target runs at batch 1
    mt.add(frames[1], _boxes(gt[0])[1])
    with pytest.raises(ModelError, match="dynamic batch"):
        mt.update(frames[2])


def test_backends_take_a_batch_of_targets(request):
    """The search graph with N crops and N template features gives each crop's own batch-1 answer."""
    rng = np.random.default_rng(0)
    for backend, fixture in (("onnxruntime", "tiny_onnx"), ("openvino", "tiny_openvino"),
                             ("torch", "tiny_checkpoint")):
        try:
            tracker = Tracker(request.getfixturevalue(fixture), backend=backend)
        except Exception as exc:  # a backend library that is not installed here
            if "pytest" in type(exc).__module__ or "not installed" in str(exc) or "needs" in str(exc):
                continue
            raise
        spec, run = tracker.spec, tracker.backend
        z = rng.uniform(-1, 1, (4, 3, spec.exemplar_size, spec.exemplar_size)).astype(np.float32)
        x = rng.uniform(-1, 1, (4, 3, spec.instance_size, spec.instance_size)).astype(np.float32)
        zfs = [np.concatenate(parts) for parts in zip(*(run.run_template(z[i:i + 1]) for i in range(4)))]
        batched = run.run_search(x, zfs)
        for i in range(4):
            alone = run.run_search(x[i:i + 1], [zf[i:i + 1] for zf in zfs])
            assert all(np.abs(b[i:i + 1] - a).max() < 1e-4 for b, a in zip(batched, alone)), backend


def test_tensorrt_engines_smaller_than_the_batch_run_in_slices(request, tmp_path, tiny_onnx, clip):
    from edgetrack.export.tensorrt_export import build_engines

    request.getfixturevalue("fake_gpu")()  # the stand-in TensorRT + CUDA of test_tensorrt
    build_engines(tiny_onnx, tmp_path / "trt", "fp32", max_batch=2)
    mark_gated(tmp_path / "trt")
    assert json.loads((tmp_path / "trt" / "spec.json").read_text())["build"]["max_batch"] == 2
    frames, gt = clip
    boxes = _boxes(gt[0])
    ref = _multi(tiny_onnx, frames[:4], boxes, backend="onnxruntime")
    got = _multi(tmp_path / "trt", frames[:4], boxes, backend="tensorrt")  # batch 3 on engines of max batch 2
    assert np.abs(got - ref).max() < TOL
