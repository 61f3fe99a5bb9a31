"""Students vs teacher on the held-out sequences: the shape of TSsKD's Tables 4/5, with AUC per source.

    python benchmarks/students_table.py --teacher runs/teachers/nanotrack_v2.safetensors \\
        --runs tsskd=runs/tsskd_v2[,tskd=runs/tskd_v2,nokd=runs/nokd_v2,...] [--peers nano]
    python benchmarks/students_table.py --models default=default,v3=runs/teachers/nanotrack_v3_onnx

Held-out = the validation sequences of the dev split (``--data``, ``--split``) plus the ``val`` rows of the video
pool's MANIFEST.tsv (``--pool``, ``--pool-split``; ``--pool none`` leaves them out), each at its own resolution;
pool rows without full ground truth are listed and not scored. Every ``student_<name>.safetensors`` of each run
folder (written by ``edgetrack-train``) and every ``--models`` checkpoint is exported to ONNX (cached next to it);
``--models`` also takes exported folders and ``default`` (the bundled model). All are tracked one thread each, in
the same run as the teacher and OpenCV's TrackerNano. Prints JSON and a table with AUC overall, per source (dev:
OTB, UAV123, VOT; pool: ``pool-<source>``), dev val vs pool val and their gap, precision, parameters, MACs,
update latency (median) and size; writes them, the report and the success/precision plots under ``--out``, and
checks the default-student targets.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgetrack.evaluation.trackers import shared_dir

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TEACHER = REPO / "runs" / "teachers" / "nanotrack_v2.safetensors"
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth")


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


def resolve_model(path: str) -> tuple[str, dict]:
    """What a tracker factory gets for ``path`` (``default``, a checkpoint, an exported folder or file), and
    the model's complexity when it is a checkpoint (empty otherwise)."""
    if path == "default":
        return "default", {}
    p = Path(path).expanduser()
    if not p.exists():
        raise SystemExit(f"error: model not found: {p}")
    if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES:
        folder, complexity = export_cached(p)
        return str(folder), complexity
    return str(p), {}


def collect_models(teacher: str, runs: str, models: str = "") -> tuple[list[tuple[str, str]], dict[str, dict]]:
    """(name, model) pairs and complexities: the teacher (unless ``none``), each run's students, ``--models``."""
    from edgetrack.evaluation.bench import model_specs

    pairs, complexity = [], {}
    if teacher.lower() != "none":
        if not Path(teacher).exists():
            raise SystemExit(f"error: teacher {teacher} not found (python benchmarks/prepare_teachers.py writes it; "
                             "--teacher none leaves it out)")
        pairs.append(("teacher", teacher))
    for item in filter(None, runs.split(",")):
        run_name, path = item.split("=", 1)
        for ckpt in sorted(Path(path).glob("student_*.safetensors")):
            pairs.append((f"{run_name}-{ckpt.stem.removeprefix('student_')}", str(ckpt)))
    pairs += model_specs(models)
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise SystemExit(f"error: model names must be unique, got {names}")
    out = []
    for name, path in pairs:
        model, complexity[name] = resolve_model(path)
        out.append((name, model))
    return out, complexity


def held_out(data: str, split: str, pool: str, pool_split: str):
    """The dev split's validation sequences plus the pool's ``pool_split`` rows with full ground truth, as one
    dataset; ``{name: column label}``; ``{name: reason}`` of the pool rows left out."""
    from edgetrack.data import Dataset, open_dataset, read_video_pool, source_of
    from edgetrack.evaluation.bench import drop_unscorable
    from edgetrack.training.split import load_split

    dev = open_dataset(data, "folder").select(load_split(split)["val"])
    groups = {s.name: source_of(s) for s in dev}
    seqs, skipped = list(dev), {}
    if pool.lower() != "none":
        pool_ds, skipped = drop_unscorable(read_video_pool(pool, split=pool_split))
        groups.update({s.name: f"pool-{source_of(s)}" for s in pool_ds})
        seqs += list(pool_ds)
    ds = Dataset("held-out", tuple(seqs), "mixed", f"{data} + {pool}" if pool.lower() != "none" else data)
    return ds, groups, skipped


def run(args, trackers, ds):
    """Track (reusing complete results on disk, and saying so), then build and write the report."""
    from edgetrack.evaluation.metrics import EvalOptions
    from edgetrack.evaluation.report import build_report, write_report
    from edgetrack.evaluation.runner import run_ope

    results = Path(args.out) / "results"
    outcomes = run_ope(ds, trackers, results, workers=args.workers)
    for f in trackers:
        reused = [o for o in outcomes if o.tracker == f.label and o.status == "skipped"]
        if reused:
            print(f"[{f.label}] reusing results on disk for {len(reused)} sequence(s) "
                  f"(delete {results / f.label} to re-run)", file=sys.stderr)
    errors: dict[str, dict[str, str]] = {}
    for o in outcomes:
        if o.status == "failed":
            errors.setdefault(o.tracker, {})[o.sequence] = o.message
    report = build_report(ds, results, [f.label for f in trackers], EvalOptions(), errors)
    paths = write_report(report, args.out, plots=not args.no_plots)
    return report, paths


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", default=str(DEFAULT_TEACHER),
                   help="teacher checkpoint or exported folder ('none': leave it out)")
    p.add_argument("--runs", default="", help="name=run_folder,... (edgetrack-train output folders)")
    p.add_argument("--models", default="",
                   help="name=checkpoint_or_exported_folder,... ('default' = the bundled model)")
    p.add_argument("--peers", default="nano")
    p.add_argument("--data", default=str(shared_dir() / "data" / "dev-sequences"))
    p.add_argument("--split", default="dev", help="package split whose 'val' sequences of --data are used")
    p.add_argument("--pool", default=str(shared_dir() / "data" / "train-videos"),
                   help="video folder with a MANIFEST.tsv ('none': dev sequences only)")
    p.add_argument("--pool-split", default="val", help="the manifest split of --pool to evaluate")
    p.add_argument("--out", default=str(REPO / "runs" / "students_table"))
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-plots", action="store_true", help="skip success.png / precision.png")
    p.add_argument("--short-term", action="store_true",
                   help="edgetrack trackers without recovery while LOST (default: the long-term mode Tracker() runs)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import os

    args = parse_args(argv)
    os.environ.setdefault("EDGETRACK_SHARED", str(shared_dir()))  # the OpenCV peers' weights
    from edgetrack.data.fileio import atomic_write_text
    from edgetrack.evaluation.trackers import TrackerFactory, peer_factories

    models, complexity = collect_models(args.teacher, args.runs, args.models)
    # graphs exported here straight from checkpoints (parity-checked by export_onnx) carry no gate report
    trackers = [TrackerFactory("edgetrack", model=model, name=name, threads=1, allow_ungated=True,
                               long_term=not args.short_term) for name, model in models]
    trackers += peer_factories(args.peers)
    if not trackers:
        raise SystemExit("error: nothing to evaluate (no teacher, runs, models or peers)")
    ds, groups, skipped = held_out(args.data, args.split, args.pool, args.pool_split)
    report, paths = run(args, trackers, ds)
    rows = table_rows(report, complexity, groups)
    sequences = {"dev": [n for n, g in groups.items() if not g.startswith("pool-")],
                 "pool": [n for n, g in groups.items() if g.startswith("pool-")]}
    summary = {"sequences": sequences, "not_scored": skipped, "rows": rows, "targets": targets(rows)}
    text = json.dumps(summary, indent=1)
    table = format_rows(rows, source_columns(groups))
    print(text)
    print(table)
    atomic_write_text(Path(args.out) / "students_table.json", text + "\n")
    atomic_write_text(Path(args.out) / "students_table.md", table + "\n")
    for key in ("success", "precision"):
        if key in paths:
            print(f"{key}: {paths[key]}")
    return 0


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def source_columns(groups: dict[str, str]) -> list[str]:
    """Column labels: the dev sources first, then the pool's, each in order of first appearance."""
    labels = list(dict.fromkeys(groups.values()))
    return [g for g in labels if not g.startswith("pool-")] + [g for g in labels if g.startswith("pool-")]


def by_group(entry: dict, groups: dict[str, str]) -> dict[str, float | None]:
    """Mean success AUC of one tracker over the scored sequences of each group (got10k's overall AUC is the
    mean of the per-sequence AUCs, so these add up like it), plus ``dev`` and ``pool``."""
    aucs: dict[str, list[float]] = {}
    for name, group in groups.items():
        auc = entry["sequences"].get(name, {}).get("success_auc")
        if auc is not None:
            aucs.setdefault(group, []).append(auc)
            aucs.setdefault("pool" if group.startswith("pool-") else "dev", []).append(auc)
    return {g: _mean(v) for g, v in aucs.items()}


def paired_with_teacher(entry: dict, teacher: dict | None, margin: float = 0.05) -> dict[str, float | int | None]:
    """Sequence by sequence against the teacher of the same run: the median AUC difference and how many
    sequences are more than ``margin`` below (above) it. One sequence that the teacher loses and a student keeps
    (or the reverse) moves the mean AUC by 0.04 on ten sequences; the median and the counts do not follow it."""
    unpaired = dict.fromkeys(("median_vs_teacher", "below_teacher", "above_teacher"))
    diffs = sorted(entry["sequences"][n]["success_auc"] - t["success_auc"]
                   for n, t in (teacher or {}).get("sequences", {}).items()
                   if entry["sequences"].get(n, {}).get("success_auc") is not None
                   and t.get("success_auc") is not None)
    if not diffs:
        return unpaired
    k = len(diffs)
    median = diffs[k // 2] if k % 2 else (diffs[k // 2 - 1] + diffs[k // 2]) / 2
    return {"median_vs_teacher": median, "below_teacher": sum(d < -margin for d in diffs),
            "above_teacher": sum(d > margin for d in diffs)}


def table_rows(report: dict, complexity: dict[str, dict], groups: dict[str, str]) -> list[dict]:
    rows = []
    teacher = report["trackers"].get("teacher")
    for name, entry in report["trackers"].items():
        o = entry["overall"]
        c = complexity.get(name, {})
        g = by_group(entry, groups)
        dev, pool = g.pop("dev", None), g.pop("pool", None)
        rows.append(dict(tracker=name, auc=o["success_auc"], precision=o["precision_20"], by_source=g,
                         dev_auc=dev, pool_auc=pool, dev_minus_pool=None if dev is None or pool is None else dev - pool,
                         params_m=c.get("params_m"), gmacs=(c["template_gmacs"] + c["search_gmacs"]) if c else None,
                         update_ms=o["update_ms_p50"], size_mb=o.get("model_size_mb"),
                         **paired_with_teacher(entry, teacher)))
    return sorted(rows, key=lambda r: -(r["auc"] if r["auc"] is not None else -1.0))


def targets(rows: list[dict]) -> dict:
    by = {r["tracker"]: r for r in rows}
    out = {}
    teacher, nano = by.get("teacher"), by.get("opencv-nano")
    for name, r in by.items():
        if name.endswith("-dull") and teacher and None not in (r["auc"], teacher["auc"], r["update_ms"]):
            out[name] = dict(auc_gap_to_teacher=r["auc"] - teacher["auc"],
                             latency_vs_teacher=r["update_ms"] / teacher["update_ms"],
                             latency_vs_opencv_nano=(r["update_ms"] / nano["update_ms"]) if nano else None)
    return out


def format_rows(rows: list[dict], columns: list[str] | None = None) -> str:
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    columns = columns or []
    head = ["tracker", "AUC", "P@20", *columns, "dev val", "pool val", "dev - pool",
            "median vs teacher (seq.)", "seq. below / above teacher by > 0.05", "params (M)", "GMACs",
            "update ms p50", "size MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["tracker"], f(r["auc"], ".3f"), f(r["precision"], ".3f"),
                 *(f(r["by_source"].get(c), ".3f") for c in columns), f(r["dev_auc"], ".3f"),
                 f(r["pool_auc"], ".3f"), f(r["dev_minus_pool"], "+.3f"), f(r.get("median_vs_teacher"), "+.3f"),
                 "-" if r.get("below_teacher") is None else f"{r['below_teacher']} / {r['above_teacher']}",
                 f(r["params_m"], ".3f"),
                 f(r["gmacs"], ".3f"), f(r["update_ms"], ".2f"), f(r["size_mb"], ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
