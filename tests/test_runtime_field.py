"""Field defects of the runtime: devices, threads, huge boxes, graphs vs spec, NaN outputs, concurrent use,
the accuracy gate on load, and re-exports that keep the previous export until the new one is complete."""
import json
import shutil
import sys
import threading
import warnings

import numpy as np
import pytest

from edgetrack import MultiTracker, Tracker
from edgetrack.errors import (
    BackendUnavailableError,
    BoxError,
    InputError,
    ModelError,
    StateError,
    UngatedModelWarning,
)

FRAME = np.full((120, 160, 3), 90, np.uint8)


def test_device_is_validated_never_a_silent_cpu_fallback(tiny_onnx):
    with pytest.raises(InputError, match="not an onnxruntime device"):
        Tracker(tiny_onnx, backend="onnxruntime", device="xyz")
    with pytest.raises(InputError, match="device"):
        Tracker(tiny_onnx, device=0)
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider"):
            Tracker(tiny_onnx, backend="onnxruntime", device="cuda:0")


def test_repr_shows_the_provider_in_use(tiny_onnx):
    tracker = Tracker(tiny_onnx)
    assert tracker.device == "CPUExecutionProvider"
    assert "device='CPUExecutionProvider'" in repr(tracker)


def test_threads_must_be_a_real_int_and_are_capped(tiny_onnx, caplog):
    from edgetrack.runtime.tracker import available_cpus, check_threads

    for bad in (True, 2.0, "2", 0, -1):
        with pytest.raises(InputError, match="threads"):
            Tracker(tiny_onnx, threads=bad)
    with caplog.at_level("WARNING"):
        assert check_threads(10_000) == available_cpus()
    assert "capped" in caplog.text


def test_huge_box_is_a_box_error(tiny_onnx):
    tracker = Tracker(tiny_onnx)
    for box in ((0, 0, 1e200, 1e200), (1e200, 0, 10, 10), (0, 0, 10, -1e300)):
        with pytest.raises(BoxError):
            tracker.init(FRAME, box)


def _respec(src, dst, **changes):
    import onnx

    from edgetrack.export.onnx_export import write_graph
    from edgetrack.runtime.model_files import locate

    spec = locate(src).spec.with_(**changes)
    dst.mkdir()
    for graph in ("template", "search"):
        write_graph(onnx.load(str(src / f"{graph}.onnx")), dst / f"{graph}.onnx", spec, graph)
    return dst


@pytest.mark.parametrize("changes", [dict(score_size=11), dict(exemplar_size=100), dict(instance_size=300)])
def test_graphs_that_disagree_with_the_spec_fail_at_load(tiny_onnx, tmp_path, changes):
    pytest.importorskip("onnx")
    folder = _respec(tiny_onnx, tmp_path / "wrong", **changes)
    with pytest.raises(ModelError, match="spec"), pytest.warns(UngatedModelWarning):
        Tracker(folder, allow_ungated=True)


class _NanBackend:
    name = "fake"

    def __init__(self, inner, nan_after: int) -> None:
        self.inner, self.calls, self.nan_after = inner, 0, nan_after

    def run_template(self, z):
        return self.inner.run_template(z)

    def run_search(self, x, zfs):
        self.calls += 1
        outs = self.inner.run_search(x, zfs)
        if self.calls > self.nan_after:
            outs = [np.full_like(o, np.nan) for o in outs]
        return outs


def test_non_finite_network_output_is_an_error_not_a_nan_box(tiny_onnx):
    tracker = Tracker(tiny_onnx)
    tracker.backend = _NanBackend(tracker.backend, nan_after=0)
    tracker.init(FRAME, (40, 40, 30, 30))
    with pytest.raises(ModelError, match="non-finite"):
        tracker.update(FRAME)


def test_non_finite_output_at_load_is_a_model_error(tiny_onnx):
    from edgetrack.runtime.checks import check_graphs

    tracker = Tracker(tiny_onnx)
    with pytest.raises(ModelError, match="non-finite"):
        check_graphs(_NanBackend(tracker.backend, nan_after=0), tracker.spec, "fake")


def test_one_tracker_from_two_threads_at_once_raises(tiny_onnx):
    tracker = Tracker(tiny_onnx)
    tracker.init(FRAME, (40, 40, 30, 30))
    inner, entered, release = tracker.backend, threading.Event(), threading.Event()

    class Slow:
        name = "slow"

        def run_template(self, z):
            return inner.run_template(z)

        def run_search(self, x, zfs):
            entered.set()
            release.wait(30)
            return inner.run_search(x, zfs)

    tracker.backend = Slow()
    results = []
    worker = threading.Thread(target=lambda: results.append(tracker.update(FRAME)))
    worker.start()
    assert entered.wait(30)
    with pytest.raises(StateError, match="another thread"):
        tracker.update(FRAME)
    with pytest.raises(StateError, match="another thread"):
        tracker.init(FRAME, (40, 40, 30, 30))
    release.set()
    worker.join(30)
    assert len(results) == 1 and np.isfinite(results[0].box).all()
    assert np.isfinite(tracker.update(FRAME).box).all()  # free again once the other call returned


def test_folder_without_a_passed_gate_needs_an_explicit_override(tiny_onnx, tmp_path):
    folder = tmp_path / "ungated"
    shutil.copytree(tiny_onnx, folder)
    (folder / "export.json").unlink()
    with pytest.raises(ModelError, match="allow_ungated"):
        Tracker(folder)
    with pytest.warns(UngatedModelWarning, match="no export.json") as caught:
        Tracker(folder, allow_ungated=True)
        MultiTracker(folder, allow_ungated=True)
    assert {w.filename for w in caught} == {__file__}  # the warning points at the line that loaded the model
    (folder / "export.json").write_text(json.dumps({"status": "failed", "rows": [{"message": "AUC drop 0.2"}]}))
    with pytest.raises(ModelError, match="AUC drop 0.2"):
        Tracker(folder)
    with pytest.warns(UngatedModelWarning, match="failed"):
        Tracker(folder, allow_ungated=True)


def test_checkpoints_and_bundled_models_need_no_gate(tiny_checkpoint):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UngatedModelWarning)
        Tracker()
        from edgetrack.runtime.model_files import check_gate, locate

        check_gate(locate(tiny_checkpoint))


def test_missing_onnxruntime_names_the_real_package(monkeypatch):
    from edgetrack.runtime.backends import ort

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BackendUnavailableError) as info:
        ort.import_onnxruntime()
    assert "pip install 'onnxruntime" in str(info.value) and "edgetrack[onnxruntime]" not in str(info.value)


def test_swap_in_replaces_files_and_folders(tmp_path):
    from edgetrack.export.swap import staging_folder, swap_in

    final = tmp_path / "out"
    (final / "onnx-fp32").mkdir(parents=True)
    (final / "onnx-fp32" / "template.onnx").write_text("old")
    (final / "template.xml").write_text("old graph the new export lacks")
    (final / "notes.txt").write_text("user file")
    staging = staging_folder(final)
    (staging / "onnx-fp32").mkdir()
    (staging / "onnx-fp32" / "template.onnx").write_text("new")
    (staging / "export.json").write_text("{}")
    swap_in(staging, final, ("onnx-fp32",))
    assert (final / "onnx-fp32" / "template.onnx").read_text() == "new"
    assert not (final / "template.xml").exists()
    assert (final / "notes.txt").read_text() == "user file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failed_reexport_keeps_the_previous_export(tmp_path, monkeypatch):
    from edgetrack.export import pipeline
    from edgetrack.export.formats import ExportRequest

    final = tmp_path / "export"
    final.mkdir()
    (final / "template.onnx").write_text("previous good graph")

    def killed(*args, **kwargs):
        (args[0].out / "template.onnx").write_text("half-written")
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_export_all", killed)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_export(ExportRequest(model=tmp_path / "m.safetensors", formats=("onnx",), precision="fp32",
                                          out=final))
    assert (final / "template.onnx").read_text() == "previous good graph"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_centre_convention_round_trips_a_box():
    from edgetrack.geometry import cxcywh_to_xywh, xywh_to_cxcywh

    box = np.array([10.0, 20.0, 10.0, 7.0])
    cx, cy, w, h = xywh_to_cxcywh(box)
    assert (cx, cy) == (14.5, 23.0)  # pixel 10..19 -> centre 14.5
    assert np.allclose(cxcywh_to_xywh(cx, cy, w, h), box)


def _fifo(path):
    import os

    if not hasattr(os, "mkfifo"):
        pytest.skip("this system has no FIFOs")
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("where", ["graph", "checkpoint"])
def test_a_fifo_where_a_model_file_is_expected_is_refused_not_read(where, tiny_onnx, tmp_path):
    from conftest import run_python

    folder = tmp_path / "m"
    folder.mkdir()
    if where == "graph":
        shutil.copy(tiny_onnx / "template.onnx", folder / "template.onnx")
        model = folder
        _fifo(folder / "search.onnx")
    else:
        model = _fifo(folder / "m.safetensors")
    code = f"""
        from edgetrack import ModelError, Tracker
        from edgetrack.cli.main import main
        try:
            Tracker({str(model)!r})
        except ModelError as exc:
            print(exc)
        assert main(["track", {str(tmp_path)!r}, "--bbox", "1,2,3,4", "--model", {str(model)!r}]) == 2
    """
    assert "is not a regular file" in run_python(code, timeout=60)  # reading the FIFO would block: a timeout


def test_one_graph_file_is_not_called_a_folder_without_a_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"junk")
    with pytest.raises(ModelError) as info:
        Tracker(bad)
    assert "holds no model" not in str(info.value)
    assert str(bad) in str(info.value) and "template.onnx and search.onnx" in str(info.value)


def test_an_empty_pth_says_it_is_empty(tmp_path):
    pytest.importorskip("torch")
    from edgetrack.models.import_nanotrack import _read_state_dict

    empty = tmp_path / "w.pth"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match=r"w.pth as a PyTorch checkpoint: the file is empty \(0 bytes\)"):
        _read_state_dict(empty)


def test_onnxruntime_that_fails_to_load_is_not_called_missing(monkeypatch):
    import builtins

    from edgetrack.runtime.backends import ort

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("libcublasLt.so.12: cannot open shared object file: No such file or directory")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(BackendUnavailableError) as info:
        ort.import_onnxruntime()
    text = str(info.value)
    assert "failed to load" in text and "libcublasLt.so.12: cannot open shared object file" in text
    assert "missing from this environment" not in text


def test_warmup_for_absurdly_many_targets_is_an_input_error(tiny_onnx):
    from edgetrack.runtime.session import MAX_WARMUP_TARGETS

    multi = MultiTracker(tiny_onnx)
    with pytest.raises(InputError, match=f"from 1 to {MAX_WARMUP_TARGETS}, got 100000"):
        multi.warmup(100000)
    assert multi.warmup(2) > 0


@pytest.mark.parametrize("box", [[[10, 10], [20, 20]], [[10, 10, 20, 20]], np.array([[10.0, 10, 20, 20]])])
def test_a_box_is_four_numbers_never_a_nested_list_flattened(box, tiny_onnx):
    tracker = Tracker(tiny_onnx)
    with pytest.raises(BoxError, match="four numbers"):
        tracker.init(FRAME, box)
    with pytest.raises(BoxError, match="four numbers"):
        MultiTracker(tiny_onnx).add(FRAME, box)
