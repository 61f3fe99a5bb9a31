"""INT8 and FP16 exports of the tiny model: ONNX Runtime QDQ and OpenVINO IR, compared with torch."""
import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edgetrack.export.calibration import CalibrationConfig, build_calibration_set  # noqa: E402
from edgetrack.export.gate import TOLERANCES, parity  # noqa: E402
from edgetrack.models.io import load_checkpoint  # noqa: E402
from edgetrack.runtime.model_files import locate  # noqa: E402
from edgetrack.spec import METADATA_KEY, TrackerSpec  # noqa: E402


class _OrtGraphs:
    def __init__(self, folder):
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.t = ort.InferenceSession(str(folder / "template.onnx"), opts, providers=["CPUExecutionProvider"])
        self.s = ort.InferenceSession(str(folder / "search.onnx"), opts, providers=["CPUExecutionProvider"])

    def run_template(self, z):
        return self.t.run(None, {"z": z})

    def run_search(self, x, zfs):
        return self.s.run(None, {"x": x, "zf": zfs[0]})


@pytest.fixture(scope="module")
def calib(tiny_checkpoint, tiny_onnx, tiny_dataset, tmp_path_factory):
    graphs = _OrtGraphs(tiny_onnx)
    config = CalibrationConfig(n_pairs=16, cache_dir=tmp_path_factory.mktemp("calib"), progress=False)
    return build_calibration_set(locate(tiny_onnx).spec, tiny_checkpoint, (tiny_dataset,), graphs.run_template,
                                 ("zf",), config)


@pytest.fixture(scope="module")
def net(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint)


@pytest.fixture(scope="module")
def onnx_int8(tiny_onnx, calib, tmp_path_factory):
    from edgetrack.export.onnx_quant import quantize_onnx_int8

    out = tmp_path_factory.mktemp("q") / "onnx_int8"
    quantize_onnx_int8(tiny_onnx, out, locate(tiny_onnx).spec, calib)
    return out


def test_onnx_int8_is_qdq_and_carries_the_spec(onnx_int8, tiny_onnx):
    for graph in ("template", "search"):
        model = onnx.load(str(onnx_int8 / f"{graph}.onnx"))
        ops = {n.op_type for n in model.graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
        props = {p.key: p.value for p in model.metadata_props}
        assert props["edgetrack_graph"] == graph and props["edgetrack_precision"] == "int8"
        assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert model.ir_version <= 10
    assert locate(onnx_int8).spec == locate(tiny_onnx).spec


def test_onnx_int8_stays_close_to_fp32_on_calibration_crops(onnx_int8, tiny_onnx, calib, net):
    fp32, int8 = _OrtGraphs(tiny_onnx), _OrtGraphs(onnx_int8)
    x, zf = calib.search_inputs["x"], calib.search_inputs["zf"]
    ref = fp32.run_search(x, [zf])
    got = int8.run_search(x, [int8.run_template(calib.template_inputs["z"])[0]])
    for a, b in zip(got, ref):
        assert np.abs(a - b).max() / max(1.0, np.abs(b).max()) < TOLERANCES["int8"]
    diffs = parity(int8, net, calib.template_inputs["z"][:4], x[:4])
    assert max(diffs.values()) < TOLERANCES["int8"]


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_openvino_ir_matches_torch_and_carries_the_spec(precision, tiny_onnx, calib, net, tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from edgetrack.export.openvino_export import OpenVinoGraphs, export_openvino

    spec = locate(tiny_onnx).spec
    result = export_openvino(tiny_onnx, tmp_path / "ir", spec, precision, calib if precision == "int8" else None)
    for graph in ("template", "search"):
        assert (tmp_path / "ir" / f"{graph}.bin").is_file()
        rt_info = ET.parse(tmp_path / "ir" / f"{graph}.xml").getroot().find("rt_info")
        assert TrackerSpec.from_json(rt_info.find(METADATA_KEY).get("value")) == spec
        assert rt_info.find("edgetrack_graph").get("value") == graph
    diffs = parity(OpenVinoGraphs.from_folder(result.folder), net, calib.template_inputs["z"][:4],
                   calib.search_inputs["x"][:4])
    assert max(diffs.values()) < TOLERANCES[precision], diffs
    if precision == "fp16":
        assert (tmp_path / "ir" / "search.bin").stat().st_size < 0.6 * (tiny_onnx / "search.onnx").stat().st_size


def test_openvino_accuracy_control(tiny_onnx, calib, tmp_path):
    pytest.importorskip("nncf")
    from edgetrack.export.openvino_export import AccuracyControl, export_openvino

    calls = []

    def evaluate(runner, seqs):
        calls.append(len(seqs))
        z = calib.template_inputs["z"][:2]
        score = -float(np.abs(runner.run_search(calib.search_inputs["x"][:2], runner.run_template(z))[0]).mean())
        return [score] * len(seqs)

    control = AccuracyControl(0.5, _two_sequences(), evaluate)
    result = export_openvino(tiny_onnx, tmp_path / "ir", locate(tiny_onnx).spec, "int8", calib, control)
    assert result.search.is_file() and calls


def _two_sequences():
    from edgetrack.data.synthetic import synthetic_sequence

    return tuple(synthetic_sequence(i, n_frames=4, size=(160, 120)) for i in range(2))
