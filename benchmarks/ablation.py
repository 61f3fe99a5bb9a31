"""The TSsKD ablation, the shape of the paper's Tables 4 and 5, at one equal budget with several seeds per cell.

    python benchmarks/ablation.py --steps 60 --seeds 0,1,2            # trains the missing runs, evaluates all
    python benchmarks/ablation.py --steps 60 --cells nokd,tskd        # a chunk (resumable)
    python benchmarks/ablation.py --steps 60 --eval-only              # tables from the runs already trained

Every run starts from the same students cut from the teacher (``edgetrack/training/configs/tsskd_ablation.yaml``:
the intelligent student 3.4x the dull one) with the same data and schedule, and differs only in its objective
and seed:

- Table 5 (both students, one run): ``nokd`` (ground truth only), ``tskd`` (TS + AH + STR, no sharing),
  ``tsskd`` (plus knowledge sharing);
- Table 4 (the dull student): ``GT`` (= ``nokd``), ``TS``, ``GT+TS``, ``AH+TS``, ``TS+STR``, ``GT+TS+STR``,
  ``AH+TS+STR`` (= ``tskd``).

Runs live in ``OUT/<cell>-s<seed>`` (each resumes after a kill; ``done.json`` marks a finished one). The evaluation
is ``benchmarks/students_table.py`` over every finished run (dev split's val sequences plus the pool's ``val``
rows, results on disk reused), with the teacher measured in the same run. Prints JSON and the two tables (mean
+- standard deviation over seeds of AUC, dev val AUC and pool val AUC), says which differences exceed the noise
(|difference of means| > 2 standard errors of the difference), and writes ``OUT/ablation.json``, ``.md`` and a PNG.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "edgetrack" / "training" / "configs" / "tsskd_ablation.yaml"
BOTH, DULL = "intelligent,dull", "dull"
# cell -> (students trained, overrides)
CELLS: dict[str, tuple[str, list[str]]] = {
    "nokd": (BOTH, ["objective.mode=nokd"]),
    "tskd": (BOTH, ["objective.mode=tskd"]),
    "tsskd": (BOTH, ["objective.mode=tsskd"]),
    "ts": (DULL, ["objective.mode=tskd", "objective.hard=none", "objective.use_str=false"]),
    "gt+ts": (DULL, ["objective.mode=tskd", "objective.hard=gt", "objective.use_str=false"]),
    "ah+ts": (DULL, ["objective.mode=tskd", "objective.hard=ah", "objective.use_str=false"]),
    "ts+str": (DULL, ["objective.mode=tskd", "objective.hard=none"]),
    "gt+ts+str": (DULL, ["objective.mode=tskd", "objective.hard=gt"]),
}
TABLE4 = {"GT": "nokd", "TS": "ts", "GT+TS": "gt+ts", "AH+TS": "ah+ts", "TS+STR": "ts+str",
          "GT+TS+STR": "gt+ts+str", "AH+TS+STR": "tskd"}
TABLE5 = {"NOKD": "nokd", "TSKD": "tskd", "TSsKD": "tsskd"}
METRICS = ("auc", "dev_auc", "pool_auc")


def train(cell: str, seed: int, steps: int, out: Path) -> Path:
    """Train (or resume) one run in this process; ``done.json`` marks it finished."""
    from edgetrack.data.fileio import atomic_write_text
    from edgetrack.training.cli import main

    run = out / f"{cell}-s{seed}"
    done = run / "done.json"
    if done.exists() and json.loads(done.read_text()).get("steps") == steps:
        print(f"== {run.name}: finished earlier ({steps} steps), kept", flush=True)
        return run
    students, overrides = CELLS[cell]
    args = ["distill", "--config", str(CONFIG), "--out", str(run), "--steps", str(steps), "--students", students,
            "--set", f"seed={seed}"]
    for item in overrides:
        args += ["--set", item]
    print(f"== training {run.name} ({steps} steps)", flush=True)
    if main(args) != 0:
        raise SystemExit(f"training {run.name} failed")
    atomic_write_text(done, json.dumps({"steps": steps, "cell": cell, "seed": seed}))
    return run


def evaluate(runs: list[Path], out: Path, teacher: Path, extra: list[str]) -> list[dict]:
    """students_table over the finished runs (its results on disk are reused); its rows."""
    table = [sys.executable, str(REPO / "benchmarks" / "students_table.py"), "--teacher", str(teacher),
             "--runs", ",".join(f"{r.name}={r}" for r in runs), "--out", str(out / "table"), "--peers", "none",
             "--no-plots", *extra]
    subprocess.run(table, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "table" / "students_table.json").read_text())["rows"]


def stats(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n if n else float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return {"mean": mean, "sd": sd, "n": n, "values": values}


def cell_stats(rows: list[dict], cell: str, student: str, seeds: list[int]) -> dict:
    by = {r["tracker"]: r for r in rows}
    out = {}
    for metric in METRICS:
        vals = [by[f"{cell}-s{s}-{student}"][metric] for s in seeds
                if f"{cell}-s{s}-{student}" in by and by[f"{cell}-s{s}-{student}"][metric] is not None]
        out[metric] = stats(vals)
    return out


def compare(a: dict, b: dict) -> dict:
    """``b - a`` on each metric, its noise band (2 standard errors) and whether it exceeds it."""
    out = {}
    for metric in METRICS:
        x, y = a[metric], b[metric]
        if x["n"] < 2 or y["n"] < 2:
            continue
        diff = y["mean"] - x["mean"]
        band = 2.0 * math.sqrt(x["sd"] ** 2 / x["n"] + y["sd"] ** 2 / y["n"])
        out[metric] = {"diff": diff, "band": band, "exceeds_noise": abs(diff) > band}
    return out


def tables(rows: list[dict], seeds: list[int]) -> dict:
    t4 = {label: cell_stats(rows, cell, "dull", seeds) for label, cell in TABLE4.items()}
    t5 = {f"{label} {student}": cell_stats(rows, cell, student, seeds)
          for student in ("dull", "intelligent") for label, cell in TABLE5.items()}
    comparisons = {f"{label} vs GT (dull)": compare(t4["GT"], t4[label]) for label in TABLE4 if label != "GT"}
    for student in ("dull", "intelligent"):
        comparisons[f"TSKD vs NOKD ({student})"] = compare(t5[f"NOKD {student}"], t5[f"TSKD {student}"])
        comparisons[f"TSsKD vs TSKD ({student})"] = compare(t5[f"TSKD {student}"], t5[f"TSsKD {student}"])
    teacher = next((r for r in rows if r["tracker"] == "teacher"), None)
    return {"table4": t4, "table5": t5, "comparisons": comparisons,
            "teacher": {m: teacher[m] for m in METRICS} if teacher else None}


def markdown(result: dict) -> str:
    def cell(s):
        return "-" if not s["n"] else (f"{s['mean']:.3f} ± {s['sd']:.3f}" if s["n"] > 1 else f"{s['mean']:.3f}")

    lines = []
    for name, key in (("Table 4 (dull student)", "table4"), ("Table 5", "table5")):
        lines += [f"### {name}", "", "| cell | AUC | dev val AUC | pool val AUC | seeds |", "|---|---|---|---|---|"]
        for label, s in result[key].items():
            lines.append(f"| {label} | {cell(s['auc'])} | {cell(s['dev_auc'])} | {cell(s['pool_auc'])} | "
                         f"{s['auc']['n']} |")
        lines.append("")
    lines += ["### Differences (b - a) and noise band (2 standard errors)", "",
              "| comparison | AUC diff | band | beyond noise |", "|---|---|---|---|"]
    for name, c in result["comparisons"].items():
        if "auc" in c:
            lines.append(f"| {name} | {c['auc']['diff']:+.3f} | {c['auc']['band']:.3f} | "
                         f"{'yes' if c['auc']['exceeds_noise'] else 'no'} |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key, title in ((axes[0], "table4", "Table 4: loss terms (dull)"), (axes[1], "table5", "Table 5")):
        labels = list(result[key])
        means = [result[key][k]["auc"]["mean"] if result[key][k]["auc"]["n"] else 0 for k in labels]
        sds = [result[key][k]["auc"]["sd"] if result[key][k]["auc"]["n"] > 1 else 0 for k in labels]
        ax.bar(range(len(labels)), means, yerr=sds, capsize=4, color="tab:blue")
        if result["teacher"]:
            ax.axhline(result["teacher"]["auc"], color="k", ls="--", label="teacher")
            ax.legend()
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_ylabel("success AUC (mean ± sd over seeds)")
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=400, help="training steps per run (the equal budget)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--cells", default=",".join(CELLS), help=f"comma-separated, of {list(CELLS)}")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "ablation")
    p.add_argument("--teacher", type=Path, default=REPO / "runs" / "teachers" / "nanotrack_v2.safetensors")
    p.add_argument("--eval-only", action="store_true")
    p.add_argument("--train-only", action="store_true")
    p.add_argument("--table-args", default="", help="extra students_table.py arguments (space-separated)")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    cells = [c for c in args.cells.split(",") if c]
    unknown = sorted(set(cells) - set(CELLS))
    if unknown:
        p.error(f"unknown cells {unknown}; choose from {list(CELLS)}")
    if not args.eval_only:
        for seed in seeds:  # seed-major: an interrupted run still has whole rows of seeds
            for cell in cells:
                train(cell, seed, args.steps, args.out)
    if args.train_only:
        return 0
    runs = sorted(r.parent for r in args.out.glob("*/done.json")
                  if json.loads(r.read_text()).get("steps") == args.steps)
    rows = evaluate(runs, args.out, args.teacher, args.table_args.split())
    result = {"steps": args.steps, "seeds": seeds, "runs": [r.name for r in runs], **tables(rows, seeds)}
    from edgetrack.data.fileio import atomic_write_text

    text, table = json.dumps(result, indent=1), markdown(result)
    print(text)
    print(table)
    atomic_write_text(args.out / "ablation.json", text + "\n")
    atomic_write_text(args.out / "ablation.md", table + "\n")
    plot(result, args.out / "ablation.png")
    print(f"plot: {args.out / 'ablation.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
