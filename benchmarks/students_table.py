"""Students vs teacher on the held-out split: the shape of TSsKD's Tables 4/5.

    python benchmarks/students_table.py --teacher runs/teachers/nanotrack_v2.safetensors \\
        --runs tsskd=runs/tsskd_v2[,tskd=runs/tskd_v2,nokd=runs/nokd_v2,...] [--peers nano]

For each run folder (written by ``edgetrack-train``) every ``student_<name>.safetensors`` is exported to ONNX
(cached next to it) and tracked with the ONNX Runtime backend, one thread, on the validation sequences of the
dev split (never trained on), in the same run as the teacher and OpenCV's TrackerNano. Prints JSON and a table
with AUC, precision, parameters, MACs, update latency (median) and size, and checks the default-student targets.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgetrack.evaluation.trackers import shared_dir

REPO = Path(__file__).resolve().parents[1]




def export_cached(ckpt: Path) -> tuple[Path, dict]:
    """ONNX folder for a checkpoint (re-exported when the checkpoint is newer) and its complexity."""
    from edgetrack.export import export_onnx
    from edgetrack.models.complexity import count_macs
    from edgetrack.models.io import load_checkpoint

    out = ckpt.with_name(ckpt.stem + "_onnx")
    net = load_checkpoint(ckpt)
    if not (out / "search.onnx").exists() or (out / "search.onnx").stat().st_mtime < ckpt.stat().st_mtime:
        export_onnx(net, out)
    return out, count_macs(net)


def collect_models(teacher: Path, runs: str) -> tuple[list[tuple[str, Path]], dict[str, dict]]:
    models, complexity = [], {}
    folder, complexity["teacher"] = export_cached(teacher)
    models.append(("teacher", folder))
    for item in filter(None, runs.split(",")):
        run_name, path = item.split("=", 1)
        for ckpt in sorted(Path(path).glob("student_*.safetensors")):
            name = f"{run_name}-{ckpt.stem.removeprefix('student_')}"
            folder, complexity[name] = export_cached(ckpt)
            models.append((name, folder))
    return models, complexity


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", required=True, type=Path)
    p.add_argument("--runs", default="", help="name=run_folder,... (edgetrack-train output folders)")
    p.add_argument("--peers", default="nano")
    p.add_argument("--data", default=str(shared_dir() / "data" / "dev-sequences"))
    p.add_argument("--split", default="dev")
    p.add_argument("--out", default=str(REPO / "runs" / "students_table"))
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)

    from edgetrack.evaluation.bench import BenchConfig, run_benchmark
    from edgetrack.evaluation.trackers import TrackerFactory, peer_factories
    from edgetrack.training.split import load_split

    models, complexity = collect_models(args.teacher, args.runs)
    trackers = [TrackerFactory("edgetrack", model=str(path), name=name, threads=1) for name, path in models]
    trackers += peer_factories(args.peers)
    val = tuple(load_split(args.split)["val"])
    result = run_benchmark(BenchConfig(out=Path(args.out), trackers=tuple(trackers), data=Path(args.data),
                                       format="folder", sequences=val, workers=args.workers))
    rows = table_rows(result.report, complexity)
    print(json.dumps({"sequences": list(val), "rows": rows, "targets": targets(rows)}, indent=1))
    print(format_rows(rows))
    return 0


def table_rows(report: dict, complexity: dict[str, dict]) -> list[dict]:
    rows = []
    for name, entry in report["trackers"].items():
        o = entry["overall"]
        c = complexity.get(name, {})
        rows.append(dict(tracker=name, auc=o["success_auc"], precision=o["precision_20"],
                         params_m=c.get("params_m"), gmacs=(c["template_gmacs"] + c["search_gmacs"]) if c else None,
                         update_ms=o["update_ms_p50"], size_mb=o.get("model_size_mb")))
    return sorted(rows, key=lambda r: -r["auc"])


def targets(rows: list[dict]) -> dict:
    by = {r["tracker"]: r for r in rows}
    out = {}
    teacher, nano = by.get("teacher"), by.get("opencv-nano")
    for name, r in by.items():
        if name.endswith("-dull") and teacher:
            out[name] = dict(auc_gap_to_teacher=r["auc"] - teacher["auc"],
                             latency_vs_teacher=r["update_ms"] / teacher["update_ms"],
                             latency_vs_opencv_nano=(r["update_ms"] / nano["update_ms"]) if nano else None)
    return out


def format_rows(rows: list[dict]) -> str:
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    lines = ["| tracker | AUC | P@20 | params (M) | GMACs | update ms p50 | size MB |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['tracker']} | {r['auc']:.3f} | {r['precision']:.3f} | {f(r['params_m'], '.3f')} | "
                     f"{f(r['gmacs'], '.3f')} | {r['update_ms']:.2f} | {f(r['size_mb'], '.2f')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
