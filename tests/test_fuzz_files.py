"""Property tests of what edgetrack reads from disk: model folders and checkpoints (missing, truncated, corrupt
files; wrong spec JSON) and ground-truth / flag files and the dataset folders holding them. Every bad file ends
in an edgetrack error with a message, never a raw onnxruntime / numpy / OpenCV / decoding exception."""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import warnings
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgetrack import DataError, EdgeTrackError, Tracker
from edgetrack.data import open_dataset, parse_boxes, read_boxes, read_flags
from edgetrack.data.gtfile import parse_flags
from edgetrack.runtime.registry import DEFAULT_NAME, bundled_dir
from edgetrack.spec import METADATA_KEY

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
BUNDLED = bundled_dir(DEFAULT_NAME)
FRAME = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
GATE_OK = json.dumps({"status": "ok", "rows": [], "note": "test fixture"})
ONNX_BACKENDS = ["onnxruntime"] + (["openvino"] if find_spec("openvino") else [])  # both read ONNX folders


def tracks_or_refuses(model, **kwargs) -> None:
    """Load ``model`` and track two frames: either that works (finite boxes) or it is an EdgeTrackError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracker = Tracker(model, threads=1, **kwargs)
            tracker.init(FRAME, (20, 16, 16, 12))
            box = tracker.update(FRAME).box
    except EdgeTrackError as exc:
        assert str(exc)
        return
    assert np.all(np.isfinite(box))


def _folder(root: Path) -> Path:
    """A fresh copy of the bundled default's ONNX graphs with a passed-gate report."""
    folder = Path(tempfile.mkdtemp(dir=root))
    for name in ("template.onnx", "search.onnx"):
        shutil.copy(BUNDLED / name, folder / name)
    (folder / "export.json").write_text(GATE_OK)
    return folder


def _mutate(data: bytes, how: str, where: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    cut = int(len(data) * where)
    if how == "truncate":
        return data[:cut]
    if how == "flip":
        buf = bytearray(data)
        for pos in rng.integers(0, len(buf), 1 + seed % 40):
            buf[pos] = int(rng.integers(0, 256))
        return bytes(buf)
    if how == "garbage":
        return rng.integers(0, 256, 1 + cut % 5000, dtype=np.uint8).tobytes()
    if how == "zero-run":
        return data[:cut] + bytes(min(4096, len(data) - cut)) + data[cut + 4096:]
    return b""  # "empty"


_MUTATION = st.tuples(st.sampled_from(["truncate", "flip", "garbage", "zero-run", "empty"]), st.floats(0, 1),
                      st.integers(0, 10_000))


# ------------------------------------------------------------------ model folders and checkpoints

@FUZZ
@given(which=st.sampled_from(["template.onnx", "search.onnx"]), mutation=_MUTATION,
       backend=st.sampled_from(ONNX_BACKENDS))
def test_corrupt_onnx_graphs(tmp_path, which, mutation, backend):
    folder = _folder(tmp_path)
    (folder / which).write_bytes(_mutate((folder / which).read_bytes(), *mutation))
    tracks_or_refuses(folder, backend=backend)


@FUZZ
@given(change=st.sampled_from(["remove template", "remove search", "template as search", "search as template",
                               "gate garbage", "gate failed", "gate folder", "no gate", "graph is a folder"]))
def test_incomplete_model_folders(tmp_path, change):
    folder = _folder(tmp_path)
    target, _, what = change.partition(" ")
    if change.startswith("remove"):
        (folder / f"{what}.onnx").unlink()
    elif " as " in change:
        shutil.copy(folder / f"{target}.onnx", folder / f"{change.split()[-1]}.onnx")
    elif change == "gate garbage":
        (folder / "export.json").write_bytes(b"\xff{[")
    elif change == "gate failed":
        (folder / "export.json").write_text(json.dumps({"status": "failed", "rows": [{"message": 3}]}))
    elif change == "gate folder":
        (folder / "export.json").unlink()
        (folder / "export.json").mkdir()
    elif change == "no gate":
        (folder / "export.json").unlink()
    else:
        (folder / "search.onnx").unlink()
        (folder / "search.onnx").mkdir()
    tracks_or_refuses(folder)


@FUZZ
@given(mutation=_MUTATION)
def test_corrupt_checkpoints(tmp_path, mutation):
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "model.safetensors"
    path.write_bytes(_mutate((BUNDLED / "model.safetensors").read_bytes(), *mutation))
    tracks_or_refuses(path)


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=6),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                  max_size=3), max_leaves=8)


@FUZZ
@given(sidecar=st.one_of(_JSON.map(json.dumps), st.binary(max_size=40).map(lambda b: b.decode("latin-1"))))
def test_engine_folder_with_any_spec_json(tmp_path, sidecar):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    (folder / "template.engine").write_bytes(b"not an engine")
    (folder / "search.engine").write_bytes(b"not an engine")
    (folder / "spec.json").write_text(sidecar)
    (folder / "export.json").write_text(GATE_OK)
    tracks_or_refuses(folder)


def _spec_dict() -> dict:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(BUNDLED / "template.onnx"))
    return json.loads(next(p.value for p in model.metadata_props if p.key == METADATA_KEY))


def _with_spec(root: Path, spec: dict) -> Path:
    """The bundled graphs carrying ``spec`` (any JSON) in their metadata."""
    onnx = pytest.importorskip("onnx")
    folder = _folder(root)
    for name in ("template.onnx", "search.onnx"):
        model = onnx.load(str(folder / name))
        for prop in model.metadata_props:
            if prop.key == METADATA_KEY:
                prop.value = json.dumps(spec)
        onnx.save(model, str(folder / name))
    return folder


# Out-of-range values of every field (context_amount, sizes, penalty_k included) are SpecErrors at load.
UNBOUNDED: tuple[str, ...] = ()
_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(), st.text(max_size=8),
                   st.lists(st.floats(-1e3, 1e3), max_size=4), st.dictionaries(st.text(max_size=4), st.integers(),
                                                                                max_size=2),
                   st.sampled_from(["RGB", "BGR", "sigmoid", "softmax", "siamfc", "siamrpn", "nanotrack"]))


@FUZZ
@given(data=st.data())
def test_wrong_spec_values_in_onnx_metadata(tmp_path, data):
    spec = _spec_dict()
    key = data.draw(st.sampled_from(sorted(k for k in spec if k not in UNBOUNDED) + ["unknown_key"]))
    spec[key] = data.draw(_VALUE)
    tracks_or_refuses(_with_spec(tmp_path, spec))


@pytest.mark.parametrize("key, value", [("context_amount", -0.5), ("context_amount", 1e308),
                                        ("instance_size", 10**30), ("score_size", 10**30), ("penalty_k", -1e10)])
def test_out_of_range_spec_values_are_spec_errors(tmp_path, key, value):
    spec = _spec_dict()
    spec[key] = value
    tracks_or_refuses(_with_spec(tmp_path, spec))


# ------------------------------------------------------------------ ground-truth and flag files

_LINE = st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                           st.sampled_from(["nan", "NaN", "inf", "-inf", "1e400", "", "x", "0x1", "1,", "٣"])),
                 min_size=0, max_size=6)
_SEP = st.sampled_from([",", " ", "\t", ", ", ";", "\x00"])
_BOX_TEXT = st.one_of(
    st.lists(st.tuples(_LINE, _SEP).map(lambda t: t[1].join(t[0])), max_size=6).map("\n".join),
    st.text(max_size=60),
)


def _check_boxes(boxes: np.ndarray) -> None:
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and boxes.dtype == np.float64
    assert not np.isinf(boxes).any()
    nan_rows = np.isnan(boxes)
    assert np.all(nan_rows.all(axis=1) == nan_rows.any(axis=1))  # a row is absent entirely or not at all


@settings(max_examples=80, deadline=None, derandomize=True)
@given(text=_BOX_TEXT)
def test_box_text_parses_or_is_a_data_error(text):
    try:
        boxes = parse_boxes(text, "gt.txt")
    except DataError as exc:
        assert "gt.txt" in str(exc)
        return
    _check_boxes(boxes)


@FUZZ
@given(content=st.one_of(_BOX_TEXT.map(lambda t: t.encode("utf-8")), st.binary(max_size=80)),
       bom=st.booleans())
def test_box_files_read_or_are_a_data_error(tmp_path, content, bom):
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "groundtruth_rect.txt"
    path.write_bytes(b"\xef\xbb\xbf" * bom + content)
    try:
        boxes = read_boxes(path)
    except DataError as exc:
        assert str(path) in str(exc)
        return
    _check_boxes(boxes)
    assert len(boxes) > 0


@FUZZ
@given(content=st.one_of(st.text(max_size=30), st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
                         st.lists(st.sampled_from(["0", "1", "1.0", "2", "-1", "nan", "x"]), max_size=8)
                         .map(",".join)), binary=st.booleans())
def test_flag_files_read_or_are_a_data_error(tmp_path, content, binary):
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "absence.label"
    path.write_bytes(content.encode("latin-1" if binary else "utf-8", errors="replace"))
    try:
        flags = read_flags(path)
    except DataError as exc:
        assert str(exc)
        return
    assert flags.dtype == bool
    text_flags = parse_flags(path.read_text(encoding="utf-8-sig"))
    assert np.array_equal(flags, text_flags)


@pytest.mark.parametrize("path", ["missing.txt", ".", "x" * 5000])
def test_missing_folder_or_impossible_paths_are_data_errors(tmp_path, path):
    with pytest.raises(DataError):
        read_boxes(tmp_path / path)
    with pytest.raises(DataError):
        read_flags(tmp_path / path)


@pytest.mark.parametrize("root", ["missing", "x" * 5000, "file.txt"])
def test_dataset_roots_that_are_not_folders(tmp_path, root):
    (tmp_path / "file.txt").write_text("1,2,3,4\n")
    with pytest.raises(DataError, match="not found|cannot tell"):
        open_dataset(tmp_path / root)


def _sequence(root: Path, name: str, n_frames: int, gt: bytes, corrupt_frame: int | None) -> None:
    img = root / name / "img"
    img.mkdir(parents=True)
    for i in range(n_frames):
        path = img / f"{i + 1:04d}.jpg"
        if i == corrupt_frame:
            path.write_bytes(b"\xff\xd8 not a jpeg")
        else:
            cv2.imwrite(str(path), FRAME)
    (root / name / "groundtruth_rect.txt").write_bytes(gt)


@FUZZ
@given(n_frames=st.integers(0, 3), rows=st.lists(st.sampled_from(["10,10,20,20", "nan,nan,nan,nan", "0,0,0,0",
                                                                 "-5,3,2,1", "1,2,3", "a,b,c,d", ""]),
                                                 max_size=4),
       junk=st.sampled_from([b"", b"\xff\xfe", b"\n\n1,2,3,4"]), corrupt=st.sampled_from([None, 0, 1]),
       layout=st.sampled_from(["auto", "dtb70", "otb", "folder", "got10k", "lasot"]))
def test_dataset_folders_open_or_are_data_errors(tmp_path, n_frames, rows, junk, corrupt, layout):
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    _sequence(root, "seq", n_frames, "\n".join(rows).encode() + junk, corrupt)
    if layout == "got10k":
        (root / "list.txt").write_bytes(b"seq\n" + junk)
    try:
        for seq in open_dataset(root, layout):
            for frame in seq:
                assert frame.ndim == 3
            assert math.isfinite(sum(seq.init_box))
    except DataError as exc:
        assert str(exc)


def test_empty_model_name_and_boxes_to_a_folder(tmp_path):
    from edgetrack import Tracker
    from edgetrack.data.gtfile import write_boxes
    from edgetrack.errors import DataError, ModelError

    with pytest.raises(ModelError, match="empty string"):
        Tracker("")
    with pytest.raises(DataError, match="is a folder"):
        write_boxes(tmp_path, np.zeros((2, 4)))
