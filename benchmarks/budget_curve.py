"""Held-out AUC against training steps: the snapshots a run kept (``--set keep_every=N``), read from
``students_table.py`` reports, with the other trackers of the same runs as reference lines.

    python benchmarks/students_table.py --models fast=default,s1000=DIR1,s2000=DIR2 --out runs/budget_lt
    python benchmarks/students_table.py --short-term --models ... --out runs/budget_st
    python benchmarks/budget_curve.py --tables long-term=runs/budget_lt,short-term=runs/budget_st \
        --out runs/budget_curve.png

Snapshot rows are the trackers named ``<prefix><step>`` (``--prefix``, default ``s``); every other row is a
reference. Prints JSON and a markdown table (overall, dev val and pool val AUC per step and mode) and writes a PNG
with one panel per mode.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

PARTS = (("auc", "all"), ("dev_auc", "dev val"), ("pool_auc", "pool val"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tables", required=True,
                   help="mode=folder,... : students_table.py output folders (each holds students_table.json)")
    p.add_argument("--prefix", default="s", help="snapshot rows are named PREFIX<step>")
    p.add_argument("--out", default=None, help="PNG to write (default: budget_curve.png in the first folder)")
    return p.parse_args(argv)


def read_table(folder: Path, prefix: str) -> tuple[dict[int, dict], dict[str, dict]]:
    """({step: row}, {reference name: row}) of one students_table.json."""
    path = folder / "students_table.json"
    try:
        rows = json.loads(path.read_text())["rows"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"error: {path} is not a students_table.py report ({exc})") from exc
    steps, refs = {}, {}
    pattern = re.compile(rf"{re.escape(prefix)}(\d+)")
    for row in rows:
        match = pattern.fullmatch(row["tracker"])
        if match:
            steps[int(match.group(1))] = row
        else:
            refs[row["tracker"]] = row
    if not steps:
        raise SystemExit(f"error: {path} has no rows named {prefix}<step>")
    return steps, refs


def report(tables: dict[str, tuple[dict, dict]]) -> dict:
    return {mode: {"steps": {str(s): {key: row.get(key) for key, _ in PARTS} for s, row in sorted(steps.items())},
                   "references": {n: {key: row.get(key) for key, _ in PARTS} for n, row in refs.items()}}
            for mode, (steps, refs) in tables.items()}


def markdown(rep: dict) -> str:
    lines = ["| mode | tracker | all | dev val | pool val |", "|---|---|---|---|---|"]
    for mode, parts in rep.items():
        rows = [(f"step {s}", r) for s, r in parts["steps"].items()] + list(parts["references"].items())
        for name, r in rows:
            cells = " | ".join("-" if r[k] is None else f"{r[k]:.3f}" for k, _ in PARTS)
            lines.append(f"| {mode} | {name} | {cells} |")
    return "\n".join(lines)


def plot(tables: dict[str, tuple[dict, dict]], out: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5 * len(tables), 4.2))
    FigureCanvasAgg(fig)
    for i, (mode, (steps, refs)) in enumerate(tables.items()):
        ax = fig.add_subplot(1, len(tables), i + 1)
        xs = sorted(steps)
        for (key, label), colour in zip(PARTS, ("black", "tab:blue", "tab:orange")):
            ax.plot(xs, [steps[s][key] for s in xs], marker="o", color=colour, label=f"snapshots, {label}")
        for j, (name, row) in enumerate(refs.items()):
            ax.axhline(row["auc"], linestyle=("--", ":", "-.")[j % 3], color="grey", linewidth=1)
            ax.annotate(f"{name} {row['auc']:.3f}", (xs[0], row["auc"]), fontsize=7, va="bottom")
        ax.set_xlabel("training step")
        ax.set_ylabel("success AUC (held out)")
        ax.set_title(mode)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tables, folders = {}, []
    for item in filter(None, (s.strip() for s in args.tables.split(","))):
        mode, sep, folder = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --tables takes mode=folder pairs, got {item!r}")
        tables[mode] = read_table(Path(folder), args.prefix)
        folders.append(Path(folder))
    rep = report(tables)
    print(json.dumps(rep, indent=1))
    print(markdown(rep))
    out = Path(args.out) if args.out else folders[0] / "budget_curve.png"
    plot(tables, out)
    print(f"plot: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
