"""Property tests of the ``edgetrack`` command line: argument lists with bad paths and bad numbers end in a
non-zero exit with one clear ``error:`` line (or argparse's usage error), never a raw traceback. Runs
``edgetrack.cli.main.main(argv)`` in this process, so any exception that escapes it fails the test."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgetrack.cli.main import main
from edgetrack.data.synthetic import write_dataset

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

_NUMBERS = ["0", "-1", "1", "2", "3", "-99999999999999999999", "99999999999999999999", "1e3", "2.5", "nan", "x", "",
            " 1", "0x10"]
LONG = "x" * 5000  # longer than any file system allows a name to be
_BOXES = ["1,2,3,4", "10,10,20,20", "a,b,c,d", "1,2,3", "1,2,3,4,5", "nan,nan,nan,nan", "0,0,0,0", "-5,-5,10,10",
          "1e300,1,2,3", "inf,1,2,3", "1 2 3 4", "", ",,,,", "10,10,1e-9,1e-9", "500,500,10,10"]


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    """Paths of every kind an argument may point at: missing, a folder, a plain file, garbage, a real video."""
    root = tmp_path_factory.mktemp("cli_fuzz")
    (root / "empty_dir").mkdir()
    (root / "text.txt").write_text("not a video\n")
    (root / "garbage.mp4").write_bytes(os.urandom(2048))
    (root / "garbage.pth").write_bytes(os.urandom(512))
    frames = root / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i + 1}.jpg"), np.full((48, 64, 3), 40 * i, np.uint8))
    data = write_dataset(root / "data", n_sequences=1, n_frames=4, size=(96, 72))
    return {"missing": str(root / "missing" / "x.mp4"), "dir": str(root / "empty_dir"), "file": str(root / "text.txt"),
            "garbage": str(root / "garbage.mp4"), "pth": str(root / "garbage.pth"), "frames": str(frames),
            "data": str(data), "out_dir": str(root / "out"), "root": str(root)}


def _path(places: dict[str, str], kind: str) -> str:
    special = {"dev_null": os.devnull, "proc": "/proc/no/such", "relative": "no/such/file", "blank": "",
               "nul": "a\x00b", "long": LONG}
    return special[kind] if kind in special else places.get(kind, kind)


_PATH_KINDS = ["missing", "dir", "file", "garbage", "frames", "dev_null", "proc", "relative", "blank", "long"]


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """(exit status, stderr + stdout) of ``edgetrack argv``; SystemExit from argparse counts as its code."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.err + out.out


def assert_clean(code: int, err: str, argv: list[str]) -> None:
    """Exit 0, or 1/2 with an ``error:`` line (a missing command prints the usage)."""
    assert "Traceback" not in err, err
    if code != 0:
        assert code in (1, 2), (argv, code, err)
        assert "error" in err.lower() or (not argv and "usage:" in err), (argv, err)


def _options(draw, places, spec: dict[str, list[str]]) -> list[str]:
    argv: list[str] = []
    for flag in draw(st.lists(st.sampled_from(sorted(spec)), max_size=4, unique=True)):
        argv += [flag, draw(st.sampled_from(spec[flag]))]
    return argv


@FUZZ
@given(data=st.data())
def test_track_arguments(places, capsys, tmp_path, data):
    out = str(tmp_path / "o")
    source = _path(places, data.draw(st.sampled_from(_PATH_KINDS + ["99", "-1"]),
                                     label="source"))
    argv = ["track", source, "--bbox", data.draw(st.sampled_from(_BOXES)), "--quiet", "--realtime", "off"]
    argv += _options(data.draw, places, {
        "--max-frames": _NUMBERS, "--threads": _NUMBERS,
        "--model": [_path(places, k) for k in ("missing", "dir", "file", "garbage")] + ["nope", "default"],
        "--backend": ["auto", "xyz", "tensorrt", "torch", ""], "--device": ["cpu", "xyz", "cuda:0", "", "gpu"],
        "--out": [out + s for s in (".mp4", ".gif", ".png", "", ".avi")] + [places["dir"], "/proc/no/v.mp4",
                                                                            LONG + ".mp4"],
        "--boxes": [out + ".txt", places["dir"], "/proc/no/b.txt", places["file"] + "/x.txt", LONG],
        "--jsonl": [out + ".jsonl", places["dir"], "/proc/no/j.jsonl", LONG],
    })
    code, err = run_cli(argv, capsys)
    assert_clean(code, err, argv)


@FUZZ
@given(data=st.data())
def test_demo_arguments(places, capsys, tmp_path, data):
    out = str(tmp_path / "demo")
    argv = ["demo"] + _options(data.draw, places, {
        "--frames": ["-1", "0", "1", "2", "3", "x", "1e3", "2.5", ""], "--seed": _NUMBERS,
        "--model": [_path(places, k) for k in ("missing", "dir", "file", "garbage")] + ["nope", "default"],
        "--backend": ["auto", "xyz", "tensorrt", ""],
        "--out": [out + s for s in (".mp4", ".gif", "", ".avi")] + [places["dir"], "/proc/no/d.mp4",
                                                                   str(tmp_path / (LONG + ".mp4"))],
    })
    if "--frames" not in argv:
        argv += ["--frames", "3"]
    if "--out" not in argv:
        argv += ["--out", out + ".mp4"]
    code, err = run_cli(argv, capsys)
    assert_clean(code, err, argv)
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert not left, (argv, left)  # a video that could not be moved into place leaves no temporary file


@FUZZ
@given(data=st.data())
def test_bench_arguments(places, capsys, tmp_path, data):
    dataset = _path(places, data.draw(st.sampled_from(["missing", "dir", "file", "data", "data", "frames", "proc",
                                                       "long"])))
    argv = ["bench", dataset, "--peers", "none", "--no-plots", "--workers", "0"]
    argv += _options(data.draw, places, {
        "--max-frames": _NUMBERS, "--max-seqs": _NUMBERS, "--workers": ["-1", "x", "0"],
        "--format": ["auto", "otb", "got10k", "lasot", "uav123", "videos", "xyz"],
        "--model": [_path(places, k) for k in ("missing", "dir", "file")] + ["=x", "a=", "none", "default"],
        "--sequences": ["nope", ",", "synth_000", ""], "--split": ["val", ""],
        "--attributes": [_path(places, k) for k in ("missing", "dir", "file")],
        "--out": [str(tmp_path / "bench"), places["file"], places["file"] + "/sub", "/proc/no/b", LONG],
    })
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "bench")]
    code, err = run_cli(argv, capsys)
    assert_clean(code, err, argv)


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_import_and_models_arguments(places, capsys, tmp_path, data):
    command = data.draw(st.sampled_from(["import", "models", "nothing"]))
    if command == "import":
        argv = ["import", data.draw(st.sampled_from(["nanotrack", "pysot-siamrpn", "vittrack", "xyz"])),
                _path(places, data.draw(st.sampled_from(["missing", "dir", "file", "pth", "garbage", "blank",
                                                         "long"]))),
                "--out", data.draw(st.sampled_from([str(tmp_path / "m.safetensors"), str(tmp_path / "m.ckpt"),
                                                    places["dir"], "/proc/no/m.safetensors",
                                                    LONG + ".safetensors"]))]
        argv += data.draw(st.sampled_from([[], ["--version", "4"], ["--version", "x"], ["--head", "bad"]]))
    elif command == "models":
        argv = ["models"] + data.draw(st.sampled_from([[], ["extra"], ["--bad"]]))
    else:
        argv = data.draw(st.sampled_from([[], ["--nope"], ["nosuchcommand"], ["--version"]]))
    code, err = run_cli(argv, capsys)
    assert_clean(code, err, argv)


@pytest.mark.parametrize("argv, message", [
    (["demo", "--seed", "-5", "--frames", "2"], "--seed"),
    (["bench", "--out", "/proc/no/such", "--peers", "none"], "--out"),
    (["track", LONG, "--bbox", "1,2,3,4"], "source not found"),
    (["track", "missing.mp4", "--bbox", "1,2,3,4", "--boxes", LONG], "too long"),
    (["demo", "--frames", "2", "--out", LONG + ".mp4"], "too long"),
])
def test_bad_numbers_and_outputs_found_by_fuzzing(places, capsys, argv, message):
    if argv[0] == "bench":
        argv = ["bench", places["data"], *argv[1:]]
    code, err = run_cli(argv, capsys)
    assert code == 2 and message in err, err


def test_bench_out_that_is_a_file(places, capsys):
    code, err = run_cli(["bench", places["data"], "--out", places["file"], "--peers", "none"], capsys)
    assert code == 2 and "is a file" in err
    assert Path(places["file"]).read_text() == "not a video\n"
