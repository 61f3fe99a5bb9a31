"""Shared fixtures: the ../shared folder (skip when absent) and a tiny NanoTrack-family model."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGETRACK_SHARED", REPO.parent / "shared"))

TINY_ARCH = dict(stem=8, blocks=[[3, 8, 8, 1, 0, 2], [3, 24, 16, 0, 0, 2], [5, 32, 24, 1, 1, 2],
                                 [5, 48, 24, 1, 1, 1]],
                 corr_adapt=True, corr_post=False, dw_corr=False, tower_style="pw_bn_act",
                 cls_tower=[[3, 16]], reg_tower=[[3, 16]])


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared data folder beside the checkout is absent)")
    return path


def run_python(code: str, timeout: float = 120) -> str:
    """Run ``code`` (dedented) in a fresh interpreter, require exit status 0, return its stripped stdout."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def mark_gated(folder: Path) -> Path:
    """Write the ``export.json`` edgetrack-export's accuracy gate leaves on a passed export, so ``Tracker`` loads
    a fixture folder made straight from ``export_onnx`` (the gate itself is tested in test_export_pipeline)."""
    import json

    (Path(folder) / "export.json").write_text(json.dumps({"status": "ok", "rows": [], "note": "test fixture"}))
    return Path(folder)


def tiny_spec(**overrides):
    from edgetrack.presets import nanotrack_spec

    return nanotrack_spec(2, arch=dict(TINY_ARCH), name="tiny", **overrides)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    from edgetrack.models import build_model
    from edgetrack.models.io import save_checkpoint

    torch.manual_seed(0)
    net = build_model(tiny_spec()).eval()
    return save_checkpoint(net, tmp_path_factory.mktemp("tiny") / "tiny.safetensors")


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint, tmp_path_factory) -> Path:
    pytest.importorskip("onnx")
    from edgetrack.export import export_onnx
    from edgetrack.models.io import load_checkpoint

    out = tmp_path_factory.mktemp("tiny_onnx") / "tiny_onnx"
    export_onnx(load_checkpoint(tiny_checkpoint), out)
    return mark_gated(out)


@pytest.fixture(scope="session")
def clip():
    """A short deterministic synthetic clip (frames, gt)."""
    from edgetrack.data.synthetic import make_sequence

    return make_sequence(3, n_frames=12, size=(256, 192), events=("scale",))


def save_openvino_ir(onnx_dir: Path, out: Path, spec_json: str, compress_to_fp16: bool = False) -> Path:
    """An OpenVINO IR folder made straight from an ONNX folder: convert_model + the spec in rt_info + save_model."""
    import openvino as ov

    from edgetrack.spec import METADATA_KEY

    out.mkdir(parents=True, exist_ok=True)
    for graph in ("template", "search"):
        model = ov.convert_model(str(onnx_dir / f"{graph}.onnx"))
        model.set_rt_info(spec_json, METADATA_KEY)
        ov.save_model(model, str(out / f"{graph}.xml"), compress_to_fp16=compress_to_fp16)
    return mark_gated(out)


@pytest.fixture(scope="session")
def tiny_openvino(tiny_onnx, tmp_path_factory) -> Path:
    pytest.importorskip("openvino")
    from edgetrack.runtime.model_files import locate

    spec = locate(tiny_onnx).spec
    return save_openvino_ir(tiny_onnx, tmp_path_factory.mktemp("tiny_ov") / "tiny_openvino", spec.to_json())


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Two short generated sequences in DTB70 layout (calibration and gate data for the export tests)."""
    from edgetrack.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("tiny_data") / "dtb", n_sequences=2, seed=0, n_frames=12,
                         size=(192, 144))
