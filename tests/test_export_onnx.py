"""ONNX export: spec in the metadata, parity with torch, dynamic batch, CLI."""
import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from edgetrack.errors import SpecError  # noqa: E402
from edgetrack.export.cli import main as export_main  # noqa: E402
from edgetrack.runtime.model_files import locate  # noqa: E402
from edgetrack.spec import METADATA_KEY, TrackerSpec  # noqa: E402


def test_spec_embedded_and_readable_without_onnx(tiny_onnx, tiny_checkpoint):
    from edgetrack.checkpoint import read_spec

    for graph in ("template", "search"):
        model = onnx.load(str(tiny_onnx / f"{graph}.onnx"))
        props = {p.key: p.value for p in model.metadata_props}
        assert TrackerSpec.from_json(props[METADATA_KEY]) == read_spec(tiny_checkpoint)
        assert props["edgetrack_graph"] == graph
        assert model.ir_version <= 10
    assert locate(tiny_onnx).spec == read_spec(tiny_checkpoint)


def test_dynamic_batch_search(tiny_onnx):
    import onnxruntime as ort

    t = ort.InferenceSession(str(tiny_onnx / "template.onnx"), providers=["CPUExecutionProvider"])
    s = ort.InferenceSession(str(tiny_onnx / "search.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    z = rng.uniform(0, 255, (3, 3, 127, 127)).astype(np.float32)
    x = rng.uniform(0, 255, (3, 3, 255, 255)).astype(np.float32)
    (zf,) = t.run(None, {"z": z})
    cls, reg = s.run(None, {"x": x, "zf": zf})
    assert cls.shape == (3, 2, 16, 16) and reg.shape == (3, 4, 16, 16)
    one = s.run(None, {"x": x[1:2], "zf": zf[1:2]})
    assert np.abs(one[0] - cls[1:2]).max() < 1e-4


def test_export_cli(tiny_checkpoint, tiny_dataset, tmp_path, capsys):
    out = tmp_path / "exported"
    assert export_main([str(tiny_checkpoint), "--format", "onnx", "--out", str(out), "--val-data",
                        str(tiny_dataset), "--val-frames", "6", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "parity vs torch" in text
    diffs = [float(line.split("=")[1]) for line in text.splitlines() if "max |diff|" in line]
    assert diffs and max(diffs) < 1e-3
    assert (out / "template.onnx").exists() and (out / "search.onnx").exists()


def test_export_cli_rejects_non_checkpoint(tmp_path, capsys):
    bogus = tmp_path / "model.pth"
    bogus.write_bytes(b"x")
    assert export_main([str(bogus)]) == 2
    assert "edgetrack checkpoint" in capsys.readouterr().err


def test_bundle_at_another_search_size(tiny_checkpoint, tmp_path):
    """The bundling step can ship a student at a smaller search crop: graphs, checkpoint and provenance agree."""
    import json

    from edgetrack import Tracker
    from edgetrack.checkpoint import read_spec
    from edgetrack.errors import UngatedModelWarning
    from edgetrack.training.bundle import bundle

    info = bundle(tiny_checkpoint, "tiny at 239", tmp_path / "b", search_size=239)
    spec = read_spec(tmp_path / "b" / "model.safetensors")
    assert info["search_size"] == 239 == spec.instance_size and spec.origin == -120.0
    assert json.loads((tmp_path / "b" / "provenance.json").read_text())["search_size"] == 239
    with pytest.warns(UngatedModelWarning):  # a bundle folder outside the package has no gate report
        tracker = Tracker(tmp_path / "b", allow_ungated=True)
    assert tracker.spec == spec
    frame = np.zeros((120, 160, 3), np.uint8)
    tracker.init(frame, (60, 40, 30, 30))
    assert np.all(np.isfinite(tracker.update(frame).box))


def test_bundle_refuses_bad_input_before_writing(tiny_checkpoint, tmp_path, capsys):
    """A bad size or --extra file is an edgetrack error (exit 2) and leaves the bundled folder as it was."""
    from edgetrack.training import bundle as bundle_module

    target = tmp_path / "b"
    bundle_module.bundle(tiny_checkpoint, "first", target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with pytest.raises(SpecError, match="multiple of the stride"):
        bundle_module.bundle(tiny_checkpoint, "second", target, search_size=250)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    bad = tmp_path / "extra.json"
    bad.write_text("[1, 2]")
    assert bundle_module.main([str(tiny_checkpoint), "--name", "never_made", "--extra", str(bad)]) == 2
    assert "JSON object" in capsys.readouterr().err
    from edgetrack.runtime.registry import bundled_dir

    assert not bundled_dir("never_made").exists()
