"""Export formats x precisions: accuracy, speed and size of the exported default student and teacher.

    python benchmarks/export_table.py [--teacher runs/teachers/nanotrack_v2.safetensors] [--calib-pairs 300]

For each model (the bundled default student, and the NanoTrack V2 teacher made by prepare_teachers.py when it is
there) ``edgetrack-export``'s pipeline writes ONNX FP32/INT8, OpenVINO FP32/FP16/INT8 and, where a GPU with
TensorRT is present, TensorRT FP32/FP16/INT8, calibrated on the dev split's *train* sequences and gated on its
validation sequences. Every exported folder is then tracked through ``edgetrack.Tracker`` (its format's backend,
one thread) on the validation sequences in one benchmark run. Prints JSON and a markdown table (AUC, AUC drop vs
the ONNX Runtime FP32 export, update latency median, size, gate status) and checks the targets: INT8 AUC drop
<= 0.005 vs FP32, OpenVINO INT8 update latency <= 0.6x ONNX Runtime FP32 in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from edgetrack.evaluation.trackers import shared_dir

REPO = Path(__file__).resolve().parents[1]
INT8_MAX_DROP = 0.005
OV_INT8_LATENCY_RATIO = 0.6


def link_folder(dev: Path, names: list[str], folder: Path) -> Path:
    """A folder of links to some of the dev sequences: calibration sees only the training ones, the gate only
    the validation ones."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        link = folder / name
        if not link.exists():
            os.symlink((dev / name).resolve(), link, target_is_directory=True)
    return folder


def export_model(name: str, ckpt: Path, args, train: Path, val: Path, platform) -> list[tuple[str, Path, dict]]:
    """Export every format x precision of one model; returns (label, folder, gate row) per export."""
    from edgetrack.export.formats import ExportArgs, validate_request
    from edgetrack.export.pipeline import run_export

    exported = []
    for precision in ("fp32", "fp16", "int8"):
        raw = ExportArgs(model=str(ckpt), format="all", fp16=precision == "fp16", int8=precision == "int8",
                         data=(str(train),), calib_pairs=args.calib_pairs, val_data=str(val),
                         max_drop=args.max_drop, out=str(Path(args.out) / name / precision))
        try:
            request = validate_request(raw, platform)
        except Exception as exc:  # e.g. no format offers fp16 on a machine without OpenVINO and TensorRT
            print(f"{name} {precision}: skipped ({exc})", file=sys.stderr)
            continue
        result = run_export(request)
        for row in result.rows:
            if row.auc is not None:  # exported (a failed gate still counts; a failed export does not)
                exported.append((f"{name}/{row.label}", Path(row.folder), row.__dict__))
    return exported


def benchmark(exported, args, val: tuple[str, ...]) -> dict:
    from edgetrack.evaluation.bench import BenchConfig, run_benchmark
    from edgetrack.evaluation.trackers import TrackerFactory
    from edgetrack.export.formats import get_format

    trackers = [TrackerFactory("edgetrack", model=str(folder), name=label, threads=1,
                               backend=get_format(label.split("/")[1].split("-")[0]).backend)
                for label, folder, _ in exported]
    shutil.rmtree(Path(args.out) / "bench", ignore_errors=True)  # fresh exports: never reuse old results
    result = run_benchmark(BenchConfig(out=Path(args.out) / "bench", trackers=tuple(trackers),
                                       data=Path(args.data), format="folder", sequences=val, workers=args.workers,
                                       plots=True))
    return result.report


def table_rows(report: dict, exported) -> list[dict]:
    gates = {label: gate for label, _, gate in exported}
    rows = []
    for label, entry in report["trackers"].items():
        o = entry["overall"]
        model, export = label.split("/")
        fmt, precision = export.split("-")
        rows.append(dict(model=model, format=fmt, precision=precision, auc=o["success_auc"],
                         update_ms=o["update_ms_p50"], size_mb=o.get("model_size_mb"),
                         gate=gates[label]["status"], gate_auc_drop=gates[label]["auc_drop"]))
    for r in rows:
        ref = next((q for q in rows if q["model"] == r["model"] and q["format"] == "onnx"
                    and q["precision"] == "fp32"), None)
        # a folder that failed its gate does not load: it has no AUC of its own (its gate row says why)
        missing = ref is None or ref["auc"] is None or r["auc"] is None
        r["auc_drop"] = None if missing else ref["auc"] - r["auc"]
    return rows


def targets(rows: list[dict]) -> dict:
    out = {}
    for model in sorted({r["model"] for r in rows}):
        by = {(r["format"], r["precision"]): r for r in rows if r["model"] == model}
        checks = {}
        for fmt in ("onnx", "openvino", "tensorrt"):
            if (fmt, "int8") in by:
                drop = by[(fmt, "int8")]["auc_drop"]
                checks[f"{fmt}_int8_auc_drop"] = dict(value=drop, target=INT8_MAX_DROP,
                                                      met=drop is not None and drop <= INT8_MAX_DROP)
        ort32, ov8 = by.get(("onnx", "fp32")), by.get(("openvino", "int8"))
        if ort32 and ov8 and ort32["update_ms"] and ov8["update_ms"]:
            ratio = ov8["update_ms"] / ort32["update_ms"]
            checks["openvino_int8_latency_vs_ort_fp32"] = dict(value=ratio, target=OV_INT8_LATENCY_RATIO,
                                                               met=ratio <= OV_INT8_LATENCY_RATIO)
        out[model] = checks
    return out


def format_rows(rows: list[dict]) -> str:
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    lines = ["| model | format | precision | AUC | AUC drop vs ORT FP32 | update ms p50 | size MB | gate |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['format']} | {r['precision']} | {f(r['auc'], '.4f')} | "
                     f"{f(r['auc_drop'], '+.4f')} | {f(r['update_ms'], '.2f')} | {f(r['size_mb'], '.2f')} | "
                     f"{r['gate']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", type=Path, default=REPO / "runs" / "teachers" / "nanotrack_v2.safetensors")
    p.add_argument("--data", default=str(shared_dir() / "data" / "dev-sequences"))
    p.add_argument("--split", default="dev")
    p.add_argument("--calib-pairs", type=int, default=300)
    p.add_argument("--max-drop", type=float, default=None,
                   help="gate threshold; given, OpenVINO INT8 uses NNCF accuracy control")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", default=str(REPO / "runs" / "export_table"))
    args = p.parse_args(argv)

    from edgetrack.export.formats import detect_platform, resolve_model
    from edgetrack.training.split import load_split

    split = load_split(args.split)
    val = tuple(split["val"])
    if not Path(args.data).is_dir():
        print(f"the dev sequences are not at {args.data}; set EDGETRACK_SHARED or --data", file=sys.stderr)
        return 2
    train = link_folder(Path(args.data), split["train"], Path(args.out) / "dev-train")
    val_dir = link_folder(Path(args.data), split["val"], Path(args.out) / "dev-val")
    models = [("student", resolve_model("default"))]
    if args.teacher.is_file():
        models.append(("teacher", args.teacher))
    else:
        print(f"teacher {args.teacher} not found (python benchmarks/prepare_teachers.py makes it); skipping it",
              file=sys.stderr)
    platform = detect_platform()
    exported = [e for name, ckpt in models for e in export_model(name, ckpt, args, train, val_dir, platform)]
    rows = table_rows(benchmark(exported, args, val), exported)
    print(json.dumps({"sequences": list(val), "calibration": split["train"], "rows": rows,
                      "targets": targets(rows)}, indent=1))
    print(format_rows(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
