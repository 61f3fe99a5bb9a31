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


# ----------------------------------------------------------------- search size
def test_with_search_size_keeps_cell_zero_at_the_crop_corner():
    """255 -> 239 px: one cell fewer, and cell 0 keeps its offset from the crop's top-left corner (pysot's rule,
    which re-centres the cells, would move every point by half a stride)."""
    spec = nanotrack_spec(2)
    assert (spec.instance_size, spec.score_size, spec.score_origin, spec.origin) == (255, 16, None, -128.0)
    small = spec.with_search_size(239)
    assert (small.instance_size, small.score_size, small.origin) == (239, 15, -120.0)
    assert small.origin + 239 // 2 == spec.origin + 255 // 2  # cell 0 in crop pixels: -1 for both
    assert -(small.score_size // 2) * small.stride == -112.0  # what pysot's rule would have said
    assert small.with_search_size(255).origin == spec.origin
    assert TrackerSpec.from_json(small.to_json()) == small
    v3 = nanotrack_spec(3)  # 15 cells at 255 px: pysot's origin -112
    assert v3.with_search_size(223).origin == -112 + 127 - 111
    assert spec.with_search_size(287).score_size == 18


def test_spec_files_without_an_origin_stay_as_they_were():
    spec = nanotrack_spec(2)
    assert "score_origin" not in spec.to_dict()
    assert TrackerSpec.from_dict(spec.to_dict()) == spec
    assert spec.with_search_size(239).to_dict()["score_origin"] == -120.0


@pytest.mark.parametrize("size, message", [(250, "multiple of the stride"), (111, "smaller than the exemplar"),
                                           (239.0, "must be an integer"), (True, "must be an integer")])
def test_with_search_size_rejects_bad_sizes(size, message):
    with pytest.raises(SpecError, match=message):
        nanotrack_spec(2).with_search_size(size)


def test_with_search_size_refuses_families_without_a_convolutional_score_map():
    spec = TrackerSpec(family="siamfc", score_size=17, stride=8, scale_num=3)
    with pytest.raises(SpecError, match="cannot be changed"):
        spec.with_search_size(263)


@pytest.mark.parametrize("origin", [float("nan"), "left", 1e9])
def test_spec_rejects_bad_score_origin(origin):
    data = nanotrack_spec(2).to_dict()
    data["score_origin"] = origin
    with pytest.raises(SpecError, match="score_origin"):
        TrackerSpec.from_dict(data)


def test_checkpoint_must_be_named_safetensors(tmp_path):
    """A checkpoint written under another suffix is an error, not a file quietly written elsewhere."""
    from edgetrack.errors import InputError

    with pytest.raises(InputError, match="m.safetensors, not m.ckpt"):
        save_arrays(tmp_path / "m.ckpt", nanotrack_spec(2), {"w": np.zeros(2, np.float32)})
    assert not list(tmp_path.iterdir())
