"""OpenVINO IR folders: the spec read from the .xml with the standard library, folder checks, backend options."""
import shutil

import numpy as np
import pytest
from conftest import mark_gated, run_python, save_openvino_ir

from edgetrack import Tracker
from edgetrack.errors import InputError, ModelError, SpecError
from edgetrack.runtime.model_files import locate


def _copy(src, dst, names):
    dst.mkdir()
    for name in names:
        shutil.copy(src / name, dst / name)
    return dst


IR_FILES = ["template.xml", "template.bin", "search.xml", "search.bin"]


def test_spec_from_the_xml(tiny_openvino, tiny_onnx):
    files = locate(tiny_openvino)
    assert files.formats == ("openvino",) and files.spec == locate(tiny_onnx).spec
    assert locate(tiny_openvino / "search.xml").root == tiny_openvino


def test_read_without_openvino_or_torch(tiny_openvino, tiny_onnx, tmp_path):
    both = _copy(tiny_openvino, tmp_path / "both", IR_FILES)
    for name in ("template.onnx", "search.onnx"):
        shutil.copy(tiny_onnx / name, both / name)
    mark_gated(both)
    code = f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["openvino"] = None
        from edgetrack import Tracker, BackendUnavailableError
        from edgetrack.runtime.model_files import locate
        assert locate({str(tiny_openvino)!r}).spec == locate({str(tiny_onnx)!r}).spec
        assert Tracker({str(both)!r}).backend.name == "onnxruntime"  # auto passes over the IR it cannot run
        try:
            Tracker({str(tiny_openvino)!r})
        except BackendUnavailableError as exc:
            assert "edgetrack[openvino]" in str(exc), exc
            print("ok")
    """
    assert run_python(code) == "ok"


def test_auto_prefers_openvino(tiny_openvino, tiny_onnx, tmp_path):
    both = _copy(tiny_openvino, tmp_path / "both", IR_FILES)
    for name in ("template.onnx", "search.onnx"):
        shutil.copy(tiny_onnx / name, both / name)
    mark_gated(both)
    assert locate(both).formats == ("onnx", "openvino")
    assert Tracker(both).backend.name == "openvino"
    assert Tracker(both, backend="onnxruntime").backend.name == "onnxruntime"
    assert Tracker(tiny_onnx, backend="openvino").backend.format == "onnx"  # OpenVINO reads ONNX too


def test_mismatched_specs_are_rejected(tiny_onnx, tiny_openvino, tmp_path):
    other = locate(tiny_onnx).spec.with_(lr=0.1).to_json()
    changed = save_openvino_ir(tiny_onnx, tmp_path / "changed", other)
    mixed = _copy(tiny_openvino, tmp_path / "mixed", ["template.xml", "template.bin"])
    shutil.copy(changed / "search.xml", mixed / "search.xml")
    shutil.copy(changed / "search.bin", mixed / "search.bin")
    with pytest.raises(SpecError, match="template.xml and search.xml carry different specs"):
        locate(mixed)
    for name in ("template.onnx", "search.onnx"):
        shutil.copy(tiny_onnx / name, changed / name)
    with pytest.raises(SpecError, match="different spec"):
        locate(changed)


def test_spec_found_under_framework_when_not_set(tiny_onnx, tmp_path):
    pytest.importorskip("openvino")
    import openvino as ov

    out = tmp_path / "plain"
    out.mkdir()
    for graph in ("template", "search"):
        ov.save_model(ov.convert_model(str(tiny_onnx / f"{graph}.onnx")), str(out / f"{graph}.xml"))
    assert locate(out).spec == locate(tiny_onnx).spec


def test_bad_ir_folders(tiny_openvino, tmp_path):
    corrupt = _copy(tiny_openvino, tmp_path / "corrupt", IR_FILES)
    (corrupt / "template.xml").write_text("<net><layers><layer id='0'")
    with pytest.raises(ModelError, match="not a valid OpenVINO IR"):
        Tracker(corrupt)
    wrong = _copy(tiny_openvino, tmp_path / "wrong", IR_FILES)
    (wrong / "template.xml").write_text("<model/>")
    with pytest.raises(ModelError, match="expected <net>"):
        locate(wrong)
    nospec = _copy(tiny_openvino, tmp_path / "nospec", IR_FILES)
    (nospec / "search.xml").write_text("<net name='m' version='11'><layers/><edges/></net>")
    with pytest.raises(ModelError, match="carries no edgetrack spec"):
        locate(nospec)
    nobin = _copy(tiny_openvino, tmp_path / "nobin", ["template.xml", "template.bin", "search.xml"])
    with pytest.raises(ModelError, match="search.bin"):
        locate(nobin)
    half = _copy(tiny_openvino, tmp_path / "half", ["template.xml", "template.bin"])
    with pytest.raises(ModelError, match="partner"):
        locate(half)


def test_fp16_ir_tracks_close_to_fp32(tmp_path, clip):
    """The bundled default as an FP16 IR tracks like its FP32 ONNX graphs. (A tiny random network is no test of
    this: its flat score maps tip to another cell under FP16's rounding, or bf16's where the CPU computes in it.)"""
    pytest.importorskip("openvino")
    from edgetrack.runtime.confidence import Recovery
    from edgetrack.runtime.model_files import default_model_dir

    fp16 = save_openvino_ir(default_model_dir(), tmp_path / "fp16", locate(None).spec.to_json(),
                            compress_to_fp16=True)
    tracker = Tracker(fp16, backend="openvino", recovery=Recovery(enabled=False))
    assert tracker.backend.precision == "f16"
    assert tracker.backend.config["INFERENCE_PRECISION_HINT"] in ("f16", "f32")
    frames, gt = clip
    ref = Tracker("default", backend="onnxruntime", recovery=Recovery(enabled=False))
    boxes = []
    for t in (ref, tracker):
        t.init(frames[0], gt[0])
        boxes.append(np.array([t.update(f).box for f in frames[1:]]))
    diff = np.abs(boxes[0] - boxes[1])
    # measured with OpenVINO 2026.4 on a CPU with AVX-512 BF16: 0.01 px on the first update, 0.75 px at most
    # after 11 (the rounding accumulates through the tracked state)
    assert diff[0].max() < 0.1 and diff.max() < 2.0, diff.max(axis=1)


def test_latency_settings(tiny_openvino):
    pytest.importorskip("openvino")
    config = Tracker(tiny_openvino, backend="openvino", threads=2).backend.config
    assert config["INFERENCE_NUM_THREADS"] == "2" and config["NUM_STREAMS"] == "1"
    assert config["PERFORMANCE_HINT"] == "LATENCY" and config["INFERENCE_PRECISION_HINT"] == "f32"


@pytest.mark.parametrize("device, name", [("cpu", "CPU"), ("gpu", "GPU"), ("GPU.1", "GPU.1"), ("gpu:0", "GPU.0"),
                                          ("npu", "NPU")])
def test_device_names(device, name):
    from edgetrack.runtime.backends.openvino_backend import ov_device_name

    assert ov_device_name(device) == name


def test_bad_device(tiny_openvino):
    pytest.importorskip("openvino")
    with pytest.raises(InputError, match="not an OpenVINO device"):
        Tracker(tiny_openvino, backend="openvino", device="cuda:0")
