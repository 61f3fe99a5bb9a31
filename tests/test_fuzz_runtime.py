"""Property tests of the runtime's public entry points: any frame, box or constructor argument either works or
ends in an edgetrack error (never a raw numpy / OpenCV / onnxruntime exception). The bundled default model;
small frames; few examples."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgetrack import BoxError, EdgeTrackError, FrameError, MultiTracker, Tracker
from edgetrack.geometry import MIN_BOX_SIZE

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
_TRACKER: list[Tracker] = []


def tracker() -> Tracker:
    """One bundled-default tracker for the module (loading it per example would dominate the run)."""
    if not _TRACKER:
        _TRACKER.append(Tracker(threads=1))
    return _TRACKER[0]


def _texture(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(h * 1000 + w).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------ frames

_DTYPES = [np.uint8, np.int8, np.uint16, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_,
           np.complex64]
_VIEWS = {  # each leaves arrays it does not apply to as they are
    "as is": lambda a: a,
    "flipped": lambda a: a[::-1, ::-1] if a.ndim >= 2 else a,
    "strided": lambda a: a[::2, ::3] if a.ndim >= 2 else a,
    "channels reversed": lambda a: a[..., ::-1] if a.ndim >= 1 else a,
    "fortran": np.asfortranarray,
    "transposed": lambda a: a.swapaxes(0, 1) if a.ndim >= 2 else a,
    "read-only": lambda a: _read_only(a),
    "big-endian": lambda a: a.astype(a.dtype.newbyteorder(">")),
    "broadcast": lambda a: np.broadcast_to(a[:1, :1], (24, 32, a.shape[2])) if a.ndim == 3 and a.size else a,
}


def _read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.setflags(write=False)
    return a


@st.composite
def frames(draw):
    """Arrays of any dtype, 0-4 dimensions, 0-40 px sides, 1-4 channels, seen through non-contiguous views;
    now and then something that is not an array at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.none(), st.text(max_size=5), st.lists(st.integers(0, 255), max_size=6)))
    dtype = draw(st.sampled_from(_DTYPES))
    ndim = draw(st.sampled_from([0, 1, 2, 3, 3, 3, 4]))
    shape = [draw(st.integers(0, 40)) for _ in range(ndim)]
    if ndim == 3:
        shape[2] = draw(st.sampled_from([1, 2, 3, 3, 3, 4]))
    kind, size = np.dtype(dtype).kind, np.dtype(dtype).itemsize
    width = {"f": 8 * size, "c": 4 * size}.get(kind)
    elements = st.floats(allow_nan=True, allow_infinity=True, width=width) if width else None
    arr = draw(hnp.arrays(dtype, tuple(shape), elements=elements, fill=elements))
    return _VIEWS[draw(st.sampled_from(sorted(_VIEWS)))](arr)


def is_valid_frame(frame) -> bool:
    return (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
            and frame.shape[0] >= 2 and frame.shape[1] >= 2)


@FUZZ
@given(frame=frames())
def test_init_takes_a_valid_frame_and_refuses_any_other_with_a_frame_error(frame):
    t = tracker()
    try:
        t.init(frame, (0, 0, 2, 2))
    except FrameError as exc:
        assert not is_valid_frame(frame), exc
        assert str(exc)
        return
    assert is_valid_frame(frame)
    result = t.update(np.ascontiguousarray(frame))
    assert np.all(np.isfinite(result.box))


@FUZZ
@given(frame=frames())
def test_update_refuses_a_bad_frame_and_keeps_tracking(frame):
    t, good = tracker(), _texture(24, 32)
    t.init(good, (8, 6, 12, 10))
    try:
        result = t.update(frame)
    except FrameError as exc:
        assert str(exc)
    else:
        assert is_valid_frame(frame) and frame.shape[:2] == good.shape[:2]
        assert np.all(np.isfinite(result.box))
    assert np.all(np.isfinite(t.update(good).box))  # a refused frame leaves the tracker usable


@FUZZ
@given(view=st.sampled_from(sorted(_VIEWS)))
def test_non_contiguous_views_track_like_their_copies(view):
    base = _texture(48, 64)
    frame = _VIEWS[view](base)
    if not is_valid_frame(frame):
        return
    a, b = Tracker(threads=1), tracker()
    a.init(frame, (4, 4, 16, 12))
    b.init(np.ascontiguousarray(frame), (4, 4, 16, 12))
    np.testing.assert_allclose(a.update(frame).box, b.update(np.ascontiguousarray(frame)).box, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ boxes

_NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**400, 10**400),
                    st.sampled_from([0, -0.0, 1e-300, 1e6, 1e6 + 1, 1e200, -1e200]))
_BOXES = st.one_of(
    st.lists(_NUMBER, min_size=0, max_size=6),
    st.tuples(_NUMBER, _NUMBER, _NUMBER, _NUMBER),
    st.lists(st.floats(0, 40), min_size=4, max_size=4),
    st.text(max_size=12),
    st.lists(st.text(max_size=3), min_size=4, max_size=4),
    st.lists(st.booleans(), min_size=4, max_size=4),
    st.none(),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=4),
    hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_, np.complex128]),
               hnp.array_shapes(min_dims=0, max_dims=2, max_side=5)),
    st.lists(st.lists(st.floats(0, 40), min_size=2, max_size=2), min_size=2, max_size=2),
)


def _plain_box(box):
    """The four numbers a box should be taken as, or None when it is not four real numbers."""
    if isinstance(box, (str, bytes, dict)) or box is None:
        return None
    arr = np.asarray(box, dtype=object).reshape(-1)
    if arr.size != 4 or not all(isinstance(v, (int, float, np.integer, np.floating)) and
                                not isinstance(v, (bool, np.bool_)) for v in arr):
        return None
    return [float(v) if abs(v) < 1e300 else float("inf") for v in arr]


@FUZZ
@given(box=_BOXES)
def test_a_box_is_tracked_or_refused_with_a_box_error(box):
    t, frame = tracker(), _texture(40, 48)
    plain = _plain_box(box)
    try:
        t.init(frame, box)
    except BoxError as exc:
        assert str(exc)
        return
    assert plain is not None, f"{box!r} was taken as a box"
    x, y, w, h = plain
    assert np.all(np.isfinite(plain)) and w >= MIN_BOX_SIZE and h >= MIN_BOX_SIZE and max(map(abs, plain)) <= 1e6
    assert x + w > 0 and y + h > 0 and x < 48 and y < 40
    result = t.update(frame)
    assert np.all(np.isfinite(result.box)) and 0.0 <= result.confidence <= 1.0


@pytest.mark.parametrize("box", [["1", "2", "3", "4"], np.array(["1", "2", "3", "4"]), [True, True, True, True],
                                 np.ones(4, dtype=bool), [1, 2, 3, "4"], [10**400, 0, 5, 5],
                                 [0.0, 0.0, 1e-235, 1e-235], [0, 0, 5, 1e-4]])
def test_boxes_found_by_fuzzing(box):
    """Strings and booleans were taken as numbers; a box of 1e-235 px ended in a ZeroDivisionError."""
    with pytest.raises(BoxError, match="four numbers|beyond|smaller than"):
        tracker().init(_texture(40, 48), box)


# ------------------------------------------------------------------ constructor arguments

_ARG = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**20), st.floats(allow_nan=True), st.text(max_size=8),
                 st.sampled_from(["cpu", "cuda", "cuda:0", "cuda:-1", "gpu", "npu", "GPU.1", "BGR", "RGB", "auto",
                                  "onnxruntime", "openvino", "torch", "tensorrt", "default", "fast", "accurate"]))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(key=st.sampled_from(["threads", "device", "backend", "input_order", "model"]), value=_ARG)
def test_a_constructor_argument_works_or_is_an_edgetrack_error(key, value):
    try:
        t = Tracker(**{key: value})
    except EdgeTrackError as exc:
        assert str(exc)
        return
    t.init(_texture(32, 32), (8, 8, 10, 10))
    assert np.all(np.isfinite(t.update(_texture(32, 32)).box))


@pytest.mark.parametrize("model", [3, ["default"], b"default", "x" * 5000, "a\x00b", ""])
def test_model_arguments_that_are_not_paths_or_names(model):
    with pytest.raises(EdgeTrackError, match="model"):
        Tracker(model)


# ------------------------------------------------------------------ several targets

_FRAME_A, _FRAME_B = _texture(40, 48), _texture(30, 30)
_OPS = st.lists(st.one_of(
    st.tuples(st.just("add"), st.one_of(st.just(_FRAME_A), st.just(_FRAME_B), frames()), _BOXES),
    st.tuples(st.just("add"), st.just(_FRAME_A), st.lists(st.floats(0, 40), min_size=4, max_size=4)),
    st.tuples(st.just("remove"), st.one_of(st.integers(-2, 6), st.none(), st.text(max_size=2), st.floats(),
                                           st.booleans())),
    st.tuples(st.just("update"), st.one_of(st.just(_FRAME_A), st.just(_FRAME_B), frames())),
    st.tuples(st.just("warmup"), st.one_of(st.none(), st.integers(-1, 4), st.booleans(), st.floats(0, 3))),
), min_size=1, max_size=10)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_OPS)
def test_multitracker_calls_work_or_are_edgetrack_errors(ops):
    multi = MultiTracker(threads=1)
    for op, *args in ops:
        try:
            if op == "add":
                multi.add(*args)
            elif op == "remove":
                multi.remove(*args)
            elif op == "warmup":
                multi.warmup(*args)
            else:
                results = multi.update(*args)
                assert list(results) == list(multi.ids)
                assert all(np.all(np.isfinite(r.box)) and 0.0 <= r.confidence <= 1.0 for r in results.values())
        except EdgeTrackError as exc:
            assert str(exc)
    multi.close()
