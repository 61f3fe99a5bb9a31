"""The runtime Tracker: backends agree, bad input is rejected clearly, decoding pieces are right."""
import numpy as np
import pytest
from conftest import mark_gated

from edgetrack import Tracker
from edgetrack.errors import BoxError, FrameError, InputError, ModelError, ModelNotFoundError, StateError
from edgetrack.geometry import crop_square
from edgetrack.runtime import postprocess as pp


def _track(tracker, frames, box):
    tracker.init(frames[0], box)
    return np.array([tracker.update(f).box for f in frames[1:]])


def test_auto_picks_backend(tiny_onnx, tiny_checkpoint):
    assert Tracker(tiny_onnx).backend.name == "onnxruntime"
    pytest.importorskip("torch")
    assert Tracker(tiny_checkpoint).backend.name == "torch"


def test_checkpoint_on_onnxruntime_says_export(tiny_checkpoint):
    with pytest.raises(ModelError, match="edgetrack-export"):
        Tracker(tiny_checkpoint, backend="onnxruntime")


def test_rgb_option(tiny_onnx, clip):
    frames, gt = clip
    bgr = _track(Tracker(tiny_onnx), frames, gt[0])
    rgb = _track(Tracker(tiny_onnx, input_order="RGB"), [f[..., ::-1].copy() for f in frames], gt[0])
    assert np.abs(bgr - rgb).max() < 1e-3


@pytest.mark.parametrize("frame, match", [
    (np.zeros((32, 32), np.uint8), "HxWx3"),
    (np.zeros((32, 32, 4), np.uint8), "HxWx3"),
    (np.zeros((32, 32, 3), np.float32), "uint8"),
    (np.zeros((0, 32, 3), np.uint8), "empty"),
    ([[1, 2, 3]], "numpy array"),
])
def test_bad_frames(tiny_onnx, frame, match):
    tracker = Tracker(tiny_onnx)
    with pytest.raises(FrameError, match=match):
        tracker.init(frame, (1, 1, 5, 5))


@pytest.mark.parametrize("box, match", [
    ((10, 10, 0, 5), "positive"), ((10, 10, -4, 5), "positive"), ((np.nan, 1, 5, 5), "non-finite"),
    ((500, 500, 10, 10), "outside"), ((-50, -50, 10, 10), "outside"), ((1, 2, 3), "four numbers"),
    ("abc", "four numbers"),
])
def test_bad_boxes(tiny_onnx, box, match):
    tracker = Tracker(tiny_onnx)
    with pytest.raises(BoxError, match=match):
        tracker.init(np.zeros((100, 120, 3), np.uint8), box)
    assert not tracker.initialized


def test_update_before_init_and_size_change(tiny_onnx, clip):
    frames, gt = clip
    tracker = Tracker(tiny_onnx)
    with pytest.raises(StateError, match="before init"):
        tracker.update(frames[0])
    tracker.init(frames[0], gt[0])
    with pytest.raises(FrameError, match="size changed"):
        tracker.update(frames[1][:100])


def test_model_errors(tmp_path, tiny_onnx):
    with pytest.raises(ModelNotFoundError):
        Tracker(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="holds no model"):
        Tracker(tmp_path / "empty")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "template.onnx").write_bytes(b"\x08\x07garbage that is not protobuf \xff\xff")
    (broken / "search.onnx").write_bytes((tiny_onnx / "search.onnx").read_bytes())
    with pytest.raises(ModelError):
        Tracker(broken)
    half = tmp_path / "half"
    half.mkdir()
    (half / "template.onnx").write_bytes((tiny_onnx / "template.onnx").read_bytes())
    with pytest.raises(ModelError, match="partner"):
        Tracker(half)
    with pytest.raises(InputError, match="unknown backend"):
        Tracker(tiny_onnx, backend="cuda-magic")
    with pytest.raises(InputError, match="threads"):
        Tracker(tiny_onnx, threads=0)


def test_default_model_is_bundled_and_tracks():
    tracker = Tracker()
    assert tracker.spec.family == "nanotrack"
    frame = np.zeros((120, 160, 3), np.uint8)
    tracker.init(frame, (40, 40, 30, 30))
    assert np.isfinite(tracker.update(frame).box).all()


def test_missing_default_model_says_what_to_do(tmp_path, monkeypatch):
    from edgetrack.runtime import model_files

    monkeypatch.setattr(model_files, "DEFAULT_DIR", tmp_path / "absent")
    with pytest.raises(ModelNotFoundError, match="edgetrack import nanotrack"):
        Tracker()


def test_crop_matches_pad_then_resize_reference():
    import cv2

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    fill = (10.0, 20.0, 30.0)
    for centre, side in [((40.0, 30.0), 33), ((2.3, 58.7), 41), ((79.0, 0.0), 64), ((-30.0, 20.0), 90),
                         ((40.0, 30.0), 200)]:
        x0 = int(np.floor(centre[0] - (side + 1) / 2 + 0.5))
        y0 = int(np.floor(centre[1] - (side + 1) / 2 + 0.5))
        pad = side + 2
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)
        patch = padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
        ref = cv2.resize(patch, (31, 31), interpolation=cv2.INTER_LINEAR)
        ours = crop_square(image, centre, side, 31, fill)
        if side <= 3 * 31:  # padded, then resized: pysot's crop exactly
            assert np.array_equal(ours, ref), (centre, side)
        else:  # a larger padded window is warped: the same up to rounding
            assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1


def test_crop_reads_only_the_window():
    """A non-contiguous frame (an RGB view of a BGR frame) crops like its contiguous copy, windows inside, across
    and beyond the border alike; the padding colour is pysot's whole-image mean up to 2**18 pixels."""
    import cv2

    from edgetrack.geometry import padding_colour

    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
    view, copy = bgr[..., ::-1], np.ascontiguousarray(bgr[..., ::-1])
    for centre, side in [((60.0, 45.0), 40), ((3.0, 80.0), 70), ((118.0, 2.0), 300), ((-20.0, 50.0), 30)]:
        assert np.array_equal(crop_square(view, centre, side, 31, (1, 2, 3)), crop_square(copy, centre, side, 31,
                                                                                        (1, 2, 3)))
    assert padding_colour(bgr) == tuple(cv2.mean(bgr)[:3])
    big = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    assert np.allclose(padding_colour(big), cv2.mean(big)[:3], atol=1.0)


def test_anchor_free_decoding_by_hand():
    points = pp.grid_points(2, 16)
    assert points.tolist() == [[-16, -16], [0, -16], [-16, 0], [0, 0]]
    reg = np.ones((4, 2, 2)) * np.array([2, 3, 4, 5])[:, None, None]
    cls = np.zeros((2, 2, 2))
    cls[1, 1, 1] = 2.0
    c = pp.decode_anchor_free(cls, reg, points, "softmax")
    assert np.allclose(c.boxes[:, 3], [1.0, 1.0, 6.0, 8.0])  # cx = 0 + (4-2)/2, cy = (5-3)/2, w, h
    assert np.isclose(c.scores[3], 1 / (1 + np.exp(-2.0))) and np.isclose(c.scores[0], 0.5)


def test_anchors_follow_pysot_layout():
    from edgetrack.spec import TrackerSpec

    spec = TrackerSpec(family="siamrpn", stride=8, score_size=3, anchor_ratios=(0.5, 1.0), anchor_scales=(8,))
    anchors = pp.make_anchors(spec)
    assert anchors.shape == (18, 4)
    # ratio 0.5: ws = int(sqrt(64 / 0.5)) = 11, hs = int(11 * 0.5) = 5, times scale 8
    assert anchors[0].tolist() == [-8, -8, 88, 40] and anchors[9].tolist() == [-8, -8, 64, 64]


def test_smaller_search_crop_decodes_where_the_network_looks():
    """A 239-px crop cut 16 px right of and below a 255-px one: its cell (i, j) looks where the 255 crop's
    (i + 1, j + 1) does, so both must decode to the same crop pixels (anchor-free points and RPN anchors)."""
    from conftest import tiny_spec

    from edgetrack.runtime.target import AnchorFreeSearch
    from edgetrack.spec import TrackerSpec

    spec = tiny_spec()
    small = spec.with_search_size(239)
    big_pts = AnchorFreeSearch(spec).points.reshape(16, 16, 2)
    small_pts = AnchorFreeSearch(small).points.reshape(15, 15, 2)
    np.testing.assert_array_equal(small_pts + 239 // 2 + 16, big_pts[1:, 1:] + 255 // 2)
    rpn = TrackerSpec(family="siamrpn", stride=8, score_size=17, anchor_ratios=(1.0,), anchor_scales=(8,))
    big_a = pp.make_anchors(rpn).reshape(17, 17, 4)
    small_a = pp.make_anchors(rpn.with_search_size(247)).reshape(16, 16, 4)
    np.testing.assert_array_equal(small_a[..., :2] + 247 // 2 + 8, big_a[1:, 1:, :2] + 255 // 2)


def test_penalty_is_one_without_change():
    boxes = np.array([[0.0], [0.0], [40.0], [20.0]])
    assert np.allclose(pp.scale_ratio_penalty(boxes, 40.0, 20.0, 0.15), 1.0)
    assert pp.scale_ratio_penalty(np.array([[0.0], [0.0], [80.0], [20.0]]), 40.0, 20.0, 0.15)[0] < 1.0


@pytest.mark.parametrize("family", ["siamrpn-dwxcorr", "siamrpn-upchannel", "siamfc"])
def test_other_families_track_the_same_on_both_backends(family, tmp_path, clip):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from edgetrack.export import export_onnx
    from edgetrack.models import build_model
    from edgetrack.models.io import save_checkpoint
    from edgetrack.models.siamfc import siamfc_spec
    from edgetrack.models.siamrpn import siamrpn_spec

    spec = siamfc_spec(width=0.25) if family == "siamfc" else siamrpn_spec(width=0.25, head=family.split("-")[1])
    torch.manual_seed(0)
    net = build_model(spec).eval()
    ckpt = save_checkpoint(net, tmp_path / "m.safetensors")
    mark_gated(export_onnx(net, tmp_path / "onnx").folder)
    frames, gt = clip
    ref = _track(Tracker(ckpt, backend="torch"), frames[:5], gt[0])
    got = _track(Tracker(tmp_path / "onnx"), frames[:5], gt[0])
    assert np.all(np.isfinite(got)) and np.abs(got - ref).max() < 0.05
