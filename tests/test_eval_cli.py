"""``edgetrack bench`` (via its add_parser/run contract) and benchmarks/dev_table.py."""
from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

import edgetrack
from edgetrack.cli import bench

REPO = Path(__file__).resolve().parents[1]
from conftest import SHARED  # noqa: E402

DEV = SHARED / "data" / "dev-sequences"


def parse(argv):
    parser = argparse.ArgumentParser(prog="edgetrack")
    sub = parser.add_subparsers(dest="command")
    bench.add_parser(sub)
    return parser.parse_args(["bench", *argv])


def test_parser_contract():
    args = parse([])
    assert args.func is bench.run and args.data is None and args.format == "auto" and args.model == ["default"]
    args = parse(["d", "--format", "otb", "--peers", "kcf,csrt", "--workers", "3", "--exclude-absent",
                  "--max-frames", "9", "--attributes", "att", "--out", "o", "--backend", "onnxruntime"])
    assert (args.data, args.format, args.peers, args.workers, args.max_frames) == ("d", "otb", "kcf,csrt", 3, 9)
    assert args.exclude_absent and args.attributes == "att" and args.backend == "onnxruntime"


def test_bench_on_the_synthetic_set(tmp_path, capsys):
    out = tmp_path / "out"
    rc = bench.run(parse(["--model", "none", "--peers", "kcf", "--workers", "0", "--max-frames", "6",
                          "--max-seqs", "2", "--out", str(out), "--no-plots", "--json"]))
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "| opencv-kcf |" in captured.out and '"success_auc"' in captured.out
    report = json.loads((out / "report.json").read_text())
    assert report["trackers"]["opencv-kcf"]["overall"]["n_sequences"] == 2
    assert (out / "results" / "opencv-kcf" / "synth_000.txt").is_file()
    assert (out / "synthetic-data" / "synth_000" / "groundtruth_rect.txt").is_file()


def _bench(tmp_path, *extra):
    return bench.run(parse(["--peers", "none", "--workers", "0", "--max-frames", "4", "--max-seqs", "1",
                            "--out", str(tmp_path / "out"), "--no-plots", *extra]))


def test_default_model_runs(tmp_path, capsys):
    assert _bench(tmp_path) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["trackers"]["edgetrack"]["overall"]["n_sequences"] == 1
    path = tmp_path / "out" / "results" / "edgetrack" / "identity.json"
    ident = json.loads(path.read_text())
    assert ident["backend"] == "onnxruntime" and ident["device"] == "cpu" and len(ident["model_sha256"]) == 64
    assert ident["edgetrack"] == edgetrack.__version__
    path.write_text(json.dumps({**ident, "edgetrack": "0.0.1"}))  # results of another edgetrack release
    assert _bench(tmp_path) == 2
    assert "edgetrack: 0.0.1 -> " + edgetrack.__version__ in capsys.readouterr().err


def test_short_term_is_part_of_the_identity(tmp_path, capsys):
    from edgetrack import Tracker
    from edgetrack.evaluation.trackers import TrackerFactory

    # the default mode is the model's own (its spec's long_term); --short-term forces recovery off
    assert TrackerFactory("edgetrack").build()._session.recovery == Tracker()._session.recovery
    assert TrackerFactory("edgetrack", model="fast").build()._session.recovery == Tracker("fast")._session.recovery
    assert not TrackerFactory("edgetrack", long_term=False).build()._session.recovery.enabled
    assert _bench(tmp_path, "--short-term") == 0
    ident = json.loads((tmp_path / "out" / "results" / "edgetrack" / "identity.json").read_text())
    assert ident["long_term"] is False
    assert _bench(tmp_path) == 2  # long-term results must not be mixed with short-term ones under one label
    assert "long_term" in capsys.readouterr().err


def test_a_model_that_cannot_load_exits_non_zero(tmp_path, capsys):
    assert _bench(tmp_path, "--model", "default", str(tmp_path / "missing.safetensors")) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "cannot be built" in err and "failed" in err
    assert (tmp_path / "out" / "report.json").is_file()


def test_several_models_side_by_side_and_no_reuse_across_models(tmp_path, tiny_onnx, capsys):
    assert _bench(tmp_path, "--model", "default", f"tiny={tiny_onnx}") == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {"edgetrack", "tiny"} <= set(report["trackers"])
    # the label 'tiny' now names another model: its results must not be reused
    assert _bench(tmp_path, "--model", "tiny=default") == 2
    err = capsys.readouterr().err
    assert "different tracker" in err and "model_sha256" in err
    # the same model under the same label resumes
    assert _bench(tmp_path, "--model", f"tiny={tiny_onnx}", "--device", "cpu") == 0
    assert _bench(tmp_path, "--model", "a=default", "a=default") == 2
    assert "label" in capsys.readouterr().err


def test_negative_workers_is_a_clear_error(tmp_path, capsys):
    assert _bench(tmp_path, "--workers", "-1") == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "Traceback" not in err


def test_errors_exit_with_status_2(tmp_path, capsys):
    assert bench.run(parse(["--model", "none", "--peers", "none", "--out", str(tmp_path)])) == 2
    assert bench.run(parse([str(tmp_path / "missing"), "--model", "none", "--out", str(tmp_path)])) == 2
    assert "not found" in capsys.readouterr().err
    bench.run(parse(["--model", "none", "--peers", "kcf", "--workers", "0", "--max-frames", "3",
                     "--max-seqs", "1", "--out", str(tmp_path / "o"), "--no-plots"]))
    other = tmp_path / "other"
    (other / "seq" / "img").mkdir(parents=True)
    import cv2
    import numpy as np

    for i in (1, 2):
        cv2.imwrite(str(other / "seq" / "img" / f"{i:04d}.jpg"), np.zeros((8, 8, 3), np.uint8))
    (other / "seq" / "groundtruth_rect.txt").write_text("1,1,3,3\n1,1,3,3\n")
    rc = bench.run(parse([str(other), "--model", "none", "--peers", "kcf", "--out", str(tmp_path / "o")]))
    assert rc == 2 and "choose another output folder" in capsys.readouterr().err


@pytest.mark.skipif(not DEV.is_dir(), reason=f"shared dev sequences not found at {DEV}")
def test_dev_table_script(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("dev_table", REPO / "benchmarks" / "dev_table.py")
    dev_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev_table)
    argv = ["--peers", "kcf", "--workers", "0", "--sequences", "otb_Bird2,vot_bag", "--max-frames", "8",
            "--out", str(tmp_path)]
    assert dev_table.main(argv) == 0
    out = capsys.readouterr().out
    assert "| opencv-kcf |" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["trackers"]["opencv-kcf"]["overall"]["n_sequences"] == 2
    assert (tmp_path / "success.png").is_file() and (tmp_path / "precision.png").is_file()


def test_budget_curve_script(tmp_path, capsys):
    """Snapshot rows by step, other rows as references, one panel per mode; a folder without a report is an
    error that names it."""
    spec = importlib.util.spec_from_file_location("budget_curve", REPO / "benchmarks" / "budget_curve.py")
    budget_curve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(budget_curve)

    def row(name, auc):
        return {"tracker": name, "auc": auc, "dev_auc": auc + 0.05, "pool_auc": auc - 0.2}

    for mode, shift in (("lt", 0.0), ("st", -0.01)):
        (tmp_path / mode).mkdir()
        rows = [row("s2000", 0.60 + shift), row("teacher", 0.64), row("s1000", 0.62 + shift)]
        (tmp_path / mode / "students_table.json").write_text(json.dumps({"rows": rows}))
    png = tmp_path / "curve.png"
    assert budget_curve.main(["--tables", f"long-term={tmp_path / 'lt'},short-term={tmp_path / 'st'}",
                              "--out", str(png)]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[:out.index("\n| mode")])
    assert list(report["long-term"]["steps"]) == ["1000", "2000"]
    assert report["short-term"]["steps"]["2000"]["auc"] == pytest.approx(0.59)
    assert list(report["long-term"]["references"]) == ["teacher"]
    assert "| short-term | step 1000 | 0.610 | 0.660 | 0.410 |" in out
    assert png.is_file() and png.stat().st_size > 1000
    with pytest.raises(SystemExit, match="students_table.json"):
        budget_curve.main(["--tables", f"lt={tmp_path / 'missing'}"])


def test_frame_skip_script(tmp_path, capsys, tiny_dataset, monkeypatch):
    """benchmarks/frame_skip.py on generated dev-layout sequences: every k-th frame, a row per model, a PNG."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("frame_skip", REPO / "benchmarks" / "frame_skip.py")
    frame_skip = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(frame_skip)
    from edgetrack.data import open_dataset

    seq = open_dataset(tiny_dataset).sequences[0]
    kept = frame_skip.every_kth(seq, 3)
    assert len(kept) == (len(seq) + 2) // 3 and kept.frame_paths[1] == seq.frame_paths[3]
    assert (kept.gt[1] == seq.gt[3]).all()
    monkeypatch.setattr(frame_skip, "sequences", lambda shared, side, max_frames: (seq.head(12),))
    assert frame_skip.main(["--models", "a=default", "--skips", "1,2", "--out", str(tmp_path / "fs")]) == 0
    report = json.loads((tmp_path / "fs" / "frame_skip.json").read_text())
    assert set(report["results"]["a"]) == {"1", "2"} and (tmp_path / "fs" / "frame_skip.png").stat().st_size > 0
    assert "| a |" in capsys.readouterr().out


def test_bench_without_matplotlib_skips_plots_with_one_line(tmp_path):
    import subprocess
    import sys
    import textwrap

    out = tmp_path / "out"
    code = textwrap.dedent(f"""
        import sys
        sys.modules["matplotlib"] = None  # the base install: any 'import matplotlib' raises ImportError
        from edgetrack.cli.main import main
        sys.exit(main(["bench", "--model", "none", "--peers", "kcf", "--workers", "0", "--max-frames", "5",
                       "--max-seqs", "1", "--out", {str(out)!r}]))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "ModuleNotFoundError" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if "plots skipped" in line]
    assert len(lines) == 1 and "edgetrack[dev]" in lines[0], run.stderr
    assert (out / "report.json").is_file() and not list(out.glob("*.png"))


def test_model_takes_the_comma_form_like_peers(tmp_path):
    labels = [t.label for t in bench._trackers(parse(["--model", "default,accurate", "--peers", "none"]))]
    assert labels == [t.label for t in bench._trackers(parse(["--model", "default", "accurate", "--peers", "none"]))]
    assert len(labels) == 2 and len(set(labels)) == 2
    assert bench.model_items(["a=x, b=y", "none"]) == ["a=x", "b=y", "none"]
    odd = tmp_path / "run,1"
    odd.mkdir()
    assert bench.model_items([str(odd), f"n={odd}"]) == [str(odd), f"n={odd}"]  # an existing path stays whole
