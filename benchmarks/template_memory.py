"""The vit family's condensed template memory on and off: the imported VitTrack, one thread, one run.

    python benchmarks/template_memory.py [--vit runs/template_memory/vittrack_calibrated.safetensors]
        [--tune] [--setting every=20,confidence=0.7,protected=0.75] [--out runs/template_memory]

``--vit``: a VitTrack checkpoint (imported from the zoo file when missing; the memory's "confident" is the
calibrated confidence, so give it one fitted by ``edgetrack calibrate``). ``--tune`` first tracks the
memory constants of :data:`GRID` (at the equal-cost budget of one template's tokens) on the training side (the
dev split's ``train`` sequences and the pool's ``train`` rows with boxes) and takes the best mean AUC; without it
``--setting`` is used. Then, on the held-out side (the dev split's ``val`` sequences and the pool's ``val``
rows), in one run: memory off, memory on with the chosen constants (same token budget as off: equal cost), and
memory on with twice the budget (not equal cost, for reference). Each setting is exported to ONNX (cached per
setting under ``--out/models``) and tracked on onnxruntime, one thread. Prints JSON and two tables (per setting:
mean AUC over the appearance-change sequences and over all, update ms median and mean relative to memory off;
per sequence: AUC of each setting), writes them, the report, the success/precision plots and
``template_memory.png`` under ``--out``. Exports and tracking results are reused by setting name (and said so):
delete ``--out`` after changing the network or runtime code.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

from students_table import held_out, run
from vit_table import vit_checkpoint

from edgetrack.evaluation.trackers import shared_dir

REPO = Path(__file__).resolve().parents[1]
#: Held-out sequences whose target changes appearance (OTB attributes deformation / in- and out-of-plane
#: rotation; the VOT bag deforms in the wind): the memory's case. The other held-out sequences are reported too.
APPEARANCE = ("otb_Bird2", "otb_Surfer", "vot_bag", "otb_boy", "otb_motorrolling")
#: The constants tuned on the training side (``--tune``), at a budget of one template's tokens.
GRID = {"memory_every": (5, 10, 20), "memory_confidence": (0.5, 0.7), "memory_protected": (0.25, 0.5, 0.75)}
SHORT = {"memory_tokens": "t", "memory_every": "e", "memory_confidence": "c", "memory_protected": "p"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vit", type=Path, default=REPO / "runs" / "template_memory" / "vittrack_calibrated.safetensors")
    p.add_argument("--tune", action="store_true", help="choose the constants on the training side first")
    p.add_argument("--setting", default="every=20,confidence=0.7,protected=0.75",
                   help="memory constants without --tune: every=N,confidence=C,protected=P")
    p.add_argument("--data", default=str(shared_dir() / "data" / "dev-sequences"))
    p.add_argument("--split", default="dev")
    p.add_argument("--pool", default=str(shared_dir() / "data" / "train-videos"), help="training-side videos")
    p.add_argument("--shared", default=str(shared_dir()), help="folder the held-out set is read from")
    p.add_argument("--out", default=str(REPO / "runs" / "template_memory"))
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-plots", action="store_true")
    return p.parse_args(argv)


def label(setting: dict) -> str:
    """A tracker name that says the constants (results on disk are reused by name)."""
    if not setting.get("memory_tokens"):
        return "memory-off"
    return "memory-" + "-".join(f"{SHORT[k]}{setting[k]:g}" for k in SHORT)


def export_setting(ckpt: Path, setting: dict, root: Path) -> Path:
    """The ONNX folder of ``ckpt`` with the memory constants of ``setting`` (exported once per setting)."""
    out = root / label(setting)
    if (out / "search.onnx").exists() and (out / "search.onnx").stat().st_mtime >= ckpt.stat().st_mtime:
        return out
    from edgetrack.export import export_onnx
    from edgetrack.models import build_model
    from edgetrack.models.io import load_checkpoint

    net = load_checkpoint(ckpt)
    spec = net.spec.with_(**setting)
    if spec != net.spec:
        again = build_model(spec)
        again.load_state_dict(net.state_dict())
        net = again
    export_onnx(net, out)
    return out


def factories(ckpt: Path, settings: list[dict], root: Path) -> list:
    from edgetrack.evaluation.trackers import TrackerFactory

    return [TrackerFactory("edgetrack", model=str(export_setting(ckpt, s, root)), name=label(s),
                           backend="onnxruntime", threads=1, allow_ungated=True) for s in settings]


def training_side(data: str, split: str, pool: str):
    """The dev split's training sequences and the pool's ``train`` rows with full ground truth."""
    from edgetrack.data import Dataset, open_dataset, read_video_pool
    from edgetrack.evaluation.bench import drop_unscorable
    from edgetrack.training.split import load_split

    seqs = list(open_dataset(data, "folder").select(load_split(split)["train"]))
    seqs += list(drop_unscorable(read_video_pool(pool, split="train"))[0])
    return Dataset("training-side", tuple(seqs), "mixed", f"{data} + {pool}")


def per_sequence(report: dict, name: str) -> dict[str, float]:
    return {seq: entry["success_auc"] for seq, entry in report["trackers"][name]["sequences"].items()}


def mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def tune(args: argparse.Namespace, ckpt: Path, budget: int) -> dict:
    """Every setting of :data:`GRID` (and memory off) on the training side; the best mean AUC's constants."""
    from edgetrack.data.fileio import atomic_write_text

    keys = list(GRID)
    settings = [{"memory_tokens": 0}] + [{"memory_tokens": budget, **dict(zip(keys, values))}
                                         for values in itertools.product(*GRID.values())]
    ns = argparse.Namespace(out=str(Path(args.out) / "tune"), workers=args.workers, no_plots=True)
    report, _ = run(ns, factories(ckpt, settings, Path(args.out) / "models"), training_side(
        args.data, args.split, args.pool))
    scores = {label(s): mean(per_sequence(report, label(s)).values()) for s in settings}
    best = max(settings[1:], key=lambda s: scores[label(s)])
    summary = {"sequences": sorted(per_sequence(report, label(settings[0]))), "mean_auc": scores,
               "chosen": best}
    atomic_write_text(Path(args.out) / "tune.json", json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return best


def parse_setting(text: str, budget: int) -> dict:
    names = {"every": ("memory_every", int), "confidence": ("memory_confidence", float),
             "protected": ("memory_protected", float)}
    out = {"memory_tokens": budget}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in names:
            raise SystemExit(f"error: unknown --setting key {key!r}; use {', '.join(names)}")
        out[names[key][0]] = names[key][1](value)
    return out


def rows_of(report: dict, settings: list[dict]) -> list[dict]:
    off = report["trackers"]["memory-off"]["overall"]
    rows = []
    for s in settings:
        o, aucs = report["trackers"][label(s)]["overall"], per_sequence(report, label(s))
        rows.append(dict(setting=label(s), constants=s, auc_appearance=mean(aucs.get(n) for n in APPEARANCE),
                         auc_all=mean(aucs.values()), update_ms_p50=o["update_ms_p50"],
                         update_ms_mean=o["update_ms_mean"], p50_vs_off=o["update_ms_p50"] / off["update_ms_p50"],
                         mean_vs_off=o["update_ms_mean"] / off["update_ms_mean"], per_sequence=aucs))
    return rows


def tables(rows: list[dict]) -> str:
    def f(v, fmt=".3f"):
        return "-" if v is None else format(v, fmt)

    head = ["setting", f"AUC appearance ({len(APPEARANCE)})", "AUC all", "update ms p50", "x off", "update ms mean",
            "x off"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([r["setting"], f(r["auc_appearance"]), f(r["auc_all"]),
                                        f(r["update_ms_p50"], ".2f"), f(r["p50_vs_off"], ".2f"),
                                        f(r["update_ms_mean"], ".2f"), f(r["mean_vs_off"], ".2f")]) + " |")
    seqs = sorted(rows[0]["per_sequence"], key=lambda n: (n not in APPEARANCE, n))
    lines += ["", "| sequence | " + " | ".join(r["setting"] for r in rows) + " |", "|" + "---|" * (len(rows) + 1)]
    for n in seqs:
        mark = " (appearance)" if n in APPEARANCE else ""
        lines.append(f"| {n}{mark} | " + " | ".join(f(r["per_sequence"].get(n)) for r in rows) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Per-sequence AUC of each setting (bars) and the update ms medians in the legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    seqs = sorted(rows[0]["per_sequence"], key=lambda n: (n not in APPEARANCE, n))
    fig = Figure(figsize=(11, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(rows)
    for k, r in enumerate(rows):
        ax.bar([i + k * width for i in range(len(seqs))], [r["per_sequence"].get(n) or 0.0 for n in seqs], width,
               label=f"{r['setting']} ({r['update_ms_p50']:.2f} ms)")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(seqs))])
    ax.set_xticklabels([n.replace("uav123_10fps_", "uav_") + (" *" if n in APPEARANCE else "") for n in seqs],
                       rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("success AUC")
    ax.set_title("VitTrack, template memory on/off (* appearance change); update ms median in the legend")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path), dpi=120)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("EDGETRACK_SHARED", str(shared_dir()))
    from edgetrack.data.fileio import atomic_write_text
    from edgetrack.models.io import load_checkpoint

    ckpt = vit_checkpoint(args.vit)
    budget = load_checkpoint(ckpt).spec.template_feat_size ** 2  # one template's tokens: the cost of memory off
    chosen = tune(args, ckpt, budget) if args.tune else parse_setting(args.setting, budget)
    settings = [{"memory_tokens": 0}, chosen, {**chosen, "memory_tokens": 2 * budget}]
    held = held_out(args.shared, args.split)
    report, paths = run(args, factories(ckpt, settings, Path(args.out) / "models"), held.dataset)
    rows = rows_of(report, settings)
    summary = {"checkpoint": str(ckpt), "sequences": sorted(held.names), "appearance_change": list(APPEARANCE),
               "not_scored": dict(held.not_scored), "tuned": bool(args.tune), "rows": rows,
               "equal_cost": abs(rows[1]["p50_vs_off"] - 1) <= 0.10}
    outputs = {"template_memory.json": json.dumps(summary, indent=1), "template_memory.md": tables(rows)}
    for name, text in outputs.items():
        print(text)
        atomic_write_text(Path(args.out) / name, text + "\n")
    if not args.no_plots:
        plot(rows, Path(args.out) / "template_memory.png")
        print(f"plot: {Path(args.out) / 'template_memory.png'}")
    print("\n".join(f"plot: {paths[k]}" for k in ("success", "precision") if k in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
