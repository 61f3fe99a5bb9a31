import json

import numpy as np
import pytest

from edgetrack.checkpoint import load_arrays, read_spec, save_arrays
from edgetrack.errors import ModelError, ModelNotFoundError, SpecError
from edgetrack.presets import nanotrack_spec
from edgetrack.spec import TrackerSpec


def test_spec_json_roundtrip():
    spec = nanotrack_spec(3)
    again = TrackerSpec.from_json(spec.to_json())
    assert again == spec
    assert again.score_size == 15 and again.window_influence == 0.455


@pytest.mark.parametrize("change, message", [
    ({"family": "yolo"}, "unknown family"),
    ({"exemplar_size": 0}, "positive integer"),
    ({"window_influence": 1.5}, "window_influence"),
    ({"std": [1, 0, 1]}, "std must be positive"),
    ({"channel_order": "GRB"}, "channel_order"),
    ({"lr": float("nan")}, "finite"),
    ({"bogus": 1}, "unknown keys"),
])
def test_spec_rejects_bad_values(change, message):
    data = nanotrack_spec(2).to_dict()
    data.update(change)
    with pytest.raises(SpecError, match=message):
        TrackerSpec.from_dict(data)


def test_spec_rejects_non_json():
    with pytest.raises(SpecError, match="not valid JSON"):
        TrackerSpec.from_json("{nope")


def test_checkpoint_roundtrip_numpy_only(tmp_path):
    spec = nanotrack_spec(1)
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3)}
    path = save_arrays(tmp_path / "m.safetensors", spec, arrays)
    assert read_spec(path) == spec
    spec2, loaded = load_arrays(path)
    assert spec2 == spec and np.array_equal(loaded["a"], arrays["a"])
    assert not list(tmp_path.glob(".tmp-*")), "atomic write left a temp file"


def test_checkpoint_missing_and_corrupt(tmp_path):
    with pytest.raises(ModelNotFoundError):
        read_spec(tmp_path / "none.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(ModelError, match="corrupt|header"):
        read_spec(bad)
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"abc")
    with pytest.raises(ModelError, match="too short"):
        read_spec(short)


def test_checkpoint_without_spec(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"a": np.zeros(2, np.float32)}, str(path))
    with pytest.raises(ModelError, match="no edgetrack spec"):
        read_spec(path)


def test_checkpoint_with_broken_spec(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "broken.safetensors"
    data = nanotrack_spec(2).to_dict()
    data["stride"] = -3
    save_file({"a": np.zeros(2, np.float32)}, str(path), metadata={"edgetrack_spec": json.dumps(data)})
    with pytest.raises(SpecError, match="stride"):
        read_spec(path)
