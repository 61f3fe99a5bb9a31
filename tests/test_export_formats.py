"""edgetrack-export's flag validation, driven by the table of formats, on made-up platforms."""
import pytest

from edgetrack.errors import BackendUnavailableError, InputError, ModelNotFoundError
from edgetrack.export.cli import FORMATS, ExportFormat
from edgetrack.export.formats import (
    PRECISIONS,
    ExportArgs,
    Platform,
    get_format,
    validate_request,
)

LAPTOP = Platform(gpu=False, tensorrt=False, openvino=True)
BARE = Platform(gpu=False, tensorrt=False, openvino=False)
JETSON = Platform(gpu=True, tensorrt=True, openvino=False)
GPU_NO_TRT = Platform(gpu=True, tensorrt=False, openvino=False)


@pytest.fixture
def data_dir(tmp_path):
    (tmp_path / "seqs").mkdir()
    return str(tmp_path / "seqs")


def test_table_is_consistent():
    names = [f.name for f in FORMATS]
    assert names == ["onnx", "openvino", "tensorrt"] and len(set(names)) == len(names)
    for fmt in FORMATS:
        assert isinstance(fmt, ExportFormat) and set(fmt.precisions) <= set(PRECISIONS)
        assert fmt.suffix.startswith(".") and fmt.exporter
    assert get_format("tensorrt").needs_gpu and not get_format("onnx").needs_gpu
    with pytest.raises(InputError, match="unknown export format"):
        get_format("tflite")


@pytest.mark.parametrize("kwargs, platform, error, match", [
    (dict(fp16=True, int8=True), LAPTOP, InputError, "exclusive"),
    (dict(format="onnx", fp16=True), LAPTOP, InputError, "offers fp32/int8, not fp16"),
    (dict(format="tensorrt"), LAPTOP, InputError, "needs an NVIDIA GPU"),
    (dict(format="tensorrt"), GPU_NO_TRT, BackendUnavailableError, r"edgetrack\[tensorrt\]"),
    (dict(format="openvino"), BARE, BackendUnavailableError, r"edgetrack\[openvino\]"),
    (dict(format="onnx", int8=True), LAPTOP, InputError, "needs calibration data"),
    (dict(format="onnx", data=("/no/such/folder",)), LAPTOP, InputError, "no such file"),
    (dict(format="onnx", dla=0), LAPTOP, InputError, "--dla"),
    (dict(format="tensorrt", workspace=0), JETSON, InputError, "--workspace"),
    (dict(format="onnx", calib_pairs=0), LAPTOP, InputError, "--calib-pairs"),
    (dict(format="onnx", val_data="/no/such/folder"), LAPTOP, InputError, "--val-data"),
    (dict(fp16=True), BARE, InputError, "picked onnx"),
    (dict(format="all", fp16=True), BARE, InputError, "no format can be written"),
])
def test_bad_flags(kwargs, platform, error, match):
    with pytest.raises(error, match=match):
        validate_request(ExportArgs(**kwargs), platform)


@pytest.mark.parametrize("platform, fp16, expected", [
    (JETSON, True, "tensorrt"),
    (LAPTOP, True, "openvino"),
    (BARE, False, "onnx"),
    (GPU_NO_TRT, False, "onnx"),
])
def test_auto_picks_the_best_available(platform, fp16, expected):
    req = validate_request(ExportArgs(fp16=fp16), platform)
    assert req.formats == (expected,) and req.precision == ("fp16" if fp16 else "fp32")
    assert not req.nested and req.model.name == "model.safetensors"


def test_all_skips_what_this_machine_cannot_write(data_dir):
    req = validate_request(ExportArgs(format="all", int8=True, data=(data_dir,), calib_pairs=500), LAPTOP)
    assert req.formats == ("onnx", "openvino") and req.nested and req.precision == "int8"
    assert any("skipped tensorrt" in n for n in req.notes)
    req = validate_request(ExportArgs(format="all", fp16=True), JETSON)
    assert req.formats == ("tensorrt",)  # onnx offers no fp16; openvino missing on this platform


def test_int8_warns_below_300_pairs_and_max_drop_turns_on_accuracy_control(data_dir):
    req = validate_request(ExportArgs(format="onnx", int8=True, data=(data_dir,), calib_pairs=50), LAPTOP)
    assert any(n.startswith("warning") and "300" in n for n in req.notes)
    assert not req.accuracy_control and req.max_drop == 0.01
    req = validate_request(ExportArgs(format="openvino", int8=True, data=(data_dir,), max_drop=0.003), LAPTOP)
    assert req.accuracy_control and req.max_drop == 0.003 and not req.notes


def test_model_argument(tmp_path, tiny_checkpoint):
    with pytest.raises(ModelNotFoundError, match="not found"):
        validate_request(ExportArgs(model=str(tmp_path / "missing.safetensors"), format="onnx"), LAPTOP)
    with pytest.raises(InputError, match="edgetrack checkpoint"):
        validate_request(ExportArgs(model=str(tmp_path / "model.pth"), format="onnx"), LAPTOP)
    req = validate_request(ExportArgs(model=str(tiny_checkpoint), format="onnx", int8=True,
                                      data=(str(tmp_path),)), LAPTOP)
    assert req.out == tiny_checkpoint.parent / "tiny_onnx_int8"


def test_cli_reports_bad_flags_clearly(capsys):
    from edgetrack.export.cli import main

    assert main(["--fp16", "--int8"]) == 2
    assert "exclusive" in capsys.readouterr().err
    assert main(["--format", "tensorrt"]) == 2  # this machine has no GPU with TensorRT
    err = capsys.readouterr().err
    assert "GPU" in err or "tensorrt" in err
    assert main(["--format", "onnx", "--int8"]) == 2
    assert "--data" in capsys.readouterr().err


@pytest.mark.parametrize("argv, flag, allowed", [(["--opset", "1"], "--opset", "from 7 to 20"),
                                                 (["--opset", "99"], "--opset", "from 7 to 20"),
                                                 (["--max-drop", "-1"], "--max-drop", "from 0 to 1"),
                                                 (["--max-drop", "nan"], "--max-drop", "from 0 to 1")])
def test_out_of_range_numbers_are_refused_before_exporting(argv, flag, allowed, capsys):
    from edgetrack.export.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"argument {flag}" in err and allowed in err


@pytest.mark.parametrize("kwargs, match", [(dict(max_drop=-1.0), "--max-drop"), (dict(opset=1), "--opset")])
def test_out_of_range_numbers_are_refused_from_python_too(kwargs, match, data_dir):
    with pytest.raises(InputError, match=match):
        validate_request(ExportArgs(format="onnx", **kwargs), BARE)
