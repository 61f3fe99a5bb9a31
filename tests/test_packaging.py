"""What a non-editable install gets: the wheel built from this tree must hold every bundled model folder."""
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "edgetrack" / "assets"


def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel offline from a copy of the sources (the checkout gets no build/ or egg-info)."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed in this environment, so no wheel can be built offline")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "edgetrack", src / "edgetrack",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".*"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                          "-q", "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    wheels = list((tmp_path / "dist").glob("edgetrack-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_holds_every_bundled_model(tmp_path):
    expected = {f"edgetrack/assets/{p.relative_to(ASSETS).as_posix()}"
                for p in ASSETS.glob("*/*") if p.is_file() and not p.name.startswith(".")}
    folders = {p.name for p in ASSETS.iterdir() if p.is_dir()}
    assert {"default", "fast"} <= folders
    with zipfile.ZipFile(_build_wheel(tmp_path)) as whl:
        names = set(whl.namelist())
    missing = sorted(expected - names)
    assert not missing, f"the wheel lacks {missing}"
    assert "edgetrack/data/splits/dev.json" in names
