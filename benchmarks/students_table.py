"""Students vs teacher on the held-out sequences: the shape of TSsKD's Tables 4/5, with AUC per source.

    python benchmarks/students_table.py --teacher runs/teachers/nanotrack_v2.safetensors \\
        --runs tsskd=runs/tsskd_v2[,tskd=runs/tskd_v2,nokd=runs/nokd_v2,...] [--peers nano]
    python benchmarks/students_table.py --models default=default,v3=runs/teachers/nanotrack_v3_onnx
    python benchmarks/students_table.py --models default=default,new-s0=A.safetensors,new-s1=B,new-s2=C

Held-out = :func:`edgetrack.data.heldout.held_out_set` (``--shared``, ``--parts``): the dev split's validation
sequences, the pool's ``val`` rows and ``data/val-videos``, each at its own resolution; rows without full ground
truth are listed and not scored. Every ``student_<name>.safetensors`` of each run folder (written by
``edgetrack-train``) and every ``--models`` checkpoint is exported to ONNX (cached next to it); ``--models`` also
takes exported folders and ``default`` (the bundled model). All are tracked one thread each, in the same run as
the teacher and OpenCV's TrackerNano. Prints JSON and tables: AUC overall, per part, aerial vs ground and per
source; each tracker paired sequence by sequence with the teacher and with ``--baseline`` (mean and median
difference, sequences more than 0.05 below / above), also on the aerial sequences alone; for recipes named
``NAME-s0``, ``NAME-s1``, ... the seed spread and the adoption rule's verdict (docs/training.md). Writes them,
the report and the success/precision plots under ``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgetrack.data.heldout import PARTS
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
    """What a tracker factory gets for ``path`` (a bundled name, a checkpoint, an exported folder or file), and
    the model's complexity when it is a checkpoint (empty otherwise)."""
    from edgetrack.runtime.registry import ALIASES, bundled_names

    if path in bundled_names() or path in ALIASES:  # a bundled model by name (default, fast, accurate)
        return path, {}
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


def held_out(shared: str, split: str, parts: str = ",".join(PARTS)):
    """The package's held-out set (:func:`edgetrack.data.heldout.held_out_set`, a :class:`HeldOut`: the dataset,
    every grouping and the rows left out), each row left out said on stderr."""
    from edgetrack.data.heldout import held_out_set

    held = held_out_set(shared, split, [p for p in parts.split(",") if p])
    for name, reason in held.not_scored.items():
        print(f"not scored: {name}: {reason}", file=sys.stderr)
    return held


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
                   help="name=checkpoint_or_exported_folder,... ('default' = the bundled model); name seeds of "
                        "one recipe NAME-s0, NAME-s1, ... to get their spread and the adoption rule")
    p.add_argument("--baseline", default="default",
                   help="the current model's name among --models: every tracker is also paired with it")
    p.add_argument("--peers", default="nano")
    p.add_argument("--shared", default=str(shared_dir()),
                   help="folder with data/dev-sequences, data/train-videos and data/val-videos")
    p.add_argument("--split", default="dev", help="package split whose 'val' dev sequences are used")
    p.add_argument("--parts", default=",".join(PARTS), help=f"held-out parts to score (of {', '.join(PARTS)})")
    p.add_argument("--out", default=str(REPO / "runs" / "students_table"))
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-plots", action="store_true", help="skip success.png / precision.png")
    p.add_argument("--short-term", action="store_true",
                   help="edgetrack trackers without recovery while LOST (default: the mode Tracker() runs, as the "
                        "model's spec says: spec.long_term)")
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
    held = held_out(args.shared, args.split, args.parts)
    report, paths = run(args, trackers, held.dataset)
    rows = table_rows(report, complexity, held, args.baseline)
    families = seed_summary(report, held, args.baseline)
    summary = {"sequences": {part: [n for n in held.names if held.part[n] == part] for part in PARTS},
               "aerial": [n for n in held.names if held.aerial[n]], "not_scored": dict(held.not_scored),
               "mode": "short-term" if args.short_term else "long-term", "rows": rows, "seed_families": families}
    text = json.dumps(summary, indent=1)
    table = format_tables(rows, held, families)
    print(text)
    print(table)
    atomic_write_text(Path(args.out) / "students_table.json", text + "\n")
    atomic_write_text(Path(args.out) / "students_table.md", table + "\n")
    for key in ("success", "precision"):
        if key in paths:
            print(f"{key}: {paths[key]}")
    return 0


def aucs_of(entry: dict) -> dict[str, float | None]:
    return {n: v.get("success_auc") for n, v in entry["sequences"].items()}


def table_rows(report: dict, complexity: dict[str, dict], held, baseline: str = "default") -> list[dict]:
    """One row per tracker: AUC overall and per group, paired with the teacher and with ``baseline``."""
    from edgetrack.evaluation.paired import group_means, paired

    trackers = report["trackers"]
    refs = {"teacher": trackers.get("teacher"), "baseline": trackers.get(baseline)}
    aerial = [n for n in held.names if held.aerial[n]]
    rows = []
    for name, entry in trackers.items():
        o, c, aucs = entry["overall"], complexity.get(name, {}), aucs_of(entry)
        row = dict(tracker=name, auc=o["success_auc"], precision=o["precision_20"],
                   params_m=c.get("params_m"), gmacs=(c["template_gmacs"] + c["search_gmacs"]) if c else None,
                   update_ms=o["update_ms_p50"], size_mb=o.get("model_size_mb"),
                   groups={g: group_means(aucs, labels) for g, labels in held.groupings().items()})
        for key, ref in refs.items():
            if ref is not None and name != (baseline if key == "baseline" else "teacher"):
                row[f"vs_{key}"] = paired(aucs, aucs_of(ref), names=held.names).as_dict()
                row[f"vs_{key}_aerial"] = paired(aucs, aucs_of(ref), names=aerial).as_dict()
        rows.append(row)
    return sorted(rows, key=lambda r: -(r["auc"] if r["auc"] is not None else -1.0))


def seed_summary(report: dict, held, baseline: str) -> dict[str, dict]:
    """Per recipe named ``NAME-sK``: the seeds' AUCs, mean and spread, and the adoption rule's verdict against
    ``baseline`` (edgetrack.evaluation.paired.AdoptionRule, fixed before the runs)."""
    import statistics

    from edgetrack.evaluation.paired import AdoptionRule, adopt, seed_families

    trackers = report["trackers"]
    out = {}
    for fam, names in seed_families(trackers).items():
        aucs = [trackers[n]["overall"]["success_auc"] for n in names]
        out[fam] = {"seeds": {n: a for n, a in zip(names, aucs)}, "mean": statistics.fmean(aucs),
                    "sd": statistics.stdev(aucs), "range": max(aucs) - min(aucs)}
        if baseline in trackers:
            out[fam]["rule"] = AdoptionRule().__dict__
            out[fam]["vs_baseline"] = adopt({n: aucs_of(trackers[n]) for n in names},
                                            aucs_of(trackers[baseline]), held.aerial)
    return out


def _f(v, fmt=".3f") -> str:
    return "-" if v is None else format(v, fmt)


def _pair(p: dict | None) -> str:
    if not p or p.get("median_diff") is None:
        return "-"
    return f"{p['mean_diff']:+.3f} / {p['median_diff']:+.3f} / {p['below']} / {p['above']}"


def format_tables(rows: list[dict], held, families: dict | None = None) -> str:
    """Overview (parts, aerial vs ground, paired columns), then AUC per source, then the seed families."""
    parts = [p for p in PARTS if p in set(held.part.values())]
    sources = list(dict.fromkeys(held.source[n] for n in held.names))
    head = ["tracker", "AUC", "P@20", *parts, "aerial", "ground",
            "vs teacher: mean / median / below / above", "aerial vs teacher", "vs baseline",
            "update ms p50", "params (M)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        g = r["groups"]
        cells = [r["tracker"], _f(r["auc"]), _f(r["precision"]), *(_f(g["part"].get(p)) for p in parts),
                 _f(g["view"].get("aerial")), _f(g["view"].get("ground")), _pair(r.get("vs_teacher")),
                 _pair(r.get("vs_teacher_aerial")), _pair(r.get("vs_baseline")), _f(r["update_ms"], ".2f"),
                 _f(r["params_m"])]
        lines.append("| " + " | ".join(cells) + " |")
    counts = {s: sum(held.source[n] == s for n in held.names) for s in sources}
    lines += ["", "| tracker | " + " | ".join(f"{s} ({counts[s]})" for s in sources) + " |",
              "|" + "---|" * (len(sources) + 1)]
    for r in rows:
        lines.append("| " + " | ".join([r["tracker"], *(_f(r["groups"]["source"].get(s)) for s in sources)]) + " |")
    for fam, f in (families or {}).items():
        v = f.get("vs_baseline", {})
        lines += ["", f"{fam}: seeds {', '.join(f'{a:.3f}' for a in f['seeds'].values())}, mean {f['mean']:.3f} "
                      f"(sd {f['sd']:.3f}); adopt: {v.get('adopt')} {'; '.join(v.get('reasons', []))}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
