"""A model's spec says whether the long-term mode is on by default (``long_term``), and why not where it is off."""
from __future__ import annotations

import json
import shutil

import pytest

from edgetrack.errors import SpecError
from edgetrack.runtime.confidence import Recovery
from edgetrack.spec import TrackerSpec


def test_spec_field_round_trip_and_old_files(tiny_checkpoint):
    from edgetrack.checkpoint import read_spec

    spec = read_spec(tiny_checkpoint)
    assert spec.long_term and "long_term" not in json.loads(spec.to_json())  # files of the default stay as they were
    off = spec.with_(long_term=False, long_term_note="loses 0.17 AUC on UAVDT with it")
    data = json.loads(off.to_json())
    assert data["long_term"] is False and data["long_term_note"].startswith("loses")
    assert TrackerSpec.from_json(off.to_json()) == off
    with pytest.raises(SpecError, match="long_term"):
        spec.with_(long_term="no")


def test_tracker_follows_the_spec_unless_told(tiny_checkpoint, tmp_path):
    from edgetrack import Tracker
    from edgetrack.runtime.spec_files import write_spec

    model = tmp_path / "off.safetensors"
    shutil.copy(tiny_checkpoint, model)
    write_spec(model, long_term=False, long_term_note="measured worse with it")
    assert Tracker(tiny_checkpoint, backend="torch")._session.recovery.enabled
    assert not Tracker(model, backend="torch")._session.recovery.enabled
    assert Tracker(model, backend="torch", recovery=Recovery())._session.recovery.enabled
