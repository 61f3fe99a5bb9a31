"""Two choices made for the bundled students, measured: an ensemble teacher, and re-tuned decoding constants.

    python benchmarks/teacher_and_decoding.py ensemble [--weight 0.5] [--json runs/ensemble.json]
    python benchmarks/teacher_and_decoding.py decoding [--model default] [--only 0.35 0.15 0.385] \
        [--json runs/decoding.json]

``ensemble``: NanoTrack V2, V3 and their average (foreground logits and box distances averaged on the cells
both heads predict: V3's 15x15 grid is V2's 16x16 grid without its first row and column) tracked as one-thread
trackers on two disjoint sets: the *training side* (the dev split's training sequences plus the pool's ``train``
rows with full ground truth) and the *held-out side* (the dev split's validation sequences plus the pool's
``val`` rows). An ensemble is worth distilling from only if it tracks better than V2 where it matters.

``decoding``: a grid over ``window_influence``, ``penalty_k`` and ``lr`` for one model, scored on the training
side only; the best setting and the model's own are then scored on the held-out side. Prints per-sequence AUCs,
the marginal mean of each constant and the sequences that move most, so a gain made of a few failures flipping
shows as such.

Frames are decoded once per sequence and shared by every tracker. Prints JSON and a table; writes a PNG next to
``--json`` when given.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from edgetrack import Tracker
from edgetrack.evaluation.disappear import fit_and_eval_sets
from edgetrack.evaluation.metrics import score_sequence
from edgetrack.evaluation.runner import track_sequence
from edgetrack.evaluation.trackers import shared_dir
from edgetrack.evaluation.tuning import CachedSequence

REPO = Path(__file__).resolve().parents[1]
TEACHERS = REPO / "runs" / "teachers"


def auc_of(tracker, seq: CachedSequence) -> float:
    record = track_sequence(tracker, seq)
    return float(score_sequence(record.boxes, seq.gt, seq.absent).success_auc)


class EnsembleBackend:
    """Two NanoTrack backends averaged: foreground logits and (l, t, r, b) distances on the shared grid cells."""

    name = "ensemble"

    def __init__(self, big, small, weight: float) -> None:
        self.big, self.small, self.weight, self._n = big, small, weight, 0

    def run_template(self, z: np.ndarray) -> list[np.ndarray]:
        zb, zs = self.big.run_template(z), self.small.run_template(z)
        self._n = len(zb)
        return list(zb) + list(zs)

    def run_search(self, x: np.ndarray, zfs: list[np.ndarray]):
        cb, rb = self.big.run_search(x, zfs[:self._n])[:2]
        cs, rs = self.small.run_search(x, zfs[self._n:])[:2]
        off = cb.shape[-1] - cs.shape[-1]  # V3's grid is V2's without its first `off` rows/columns
        logit, reg = cb[:, 1] - cb[:, 0], rb.copy()
        logit[:, off:, off:] = (1 - self.weight) * logit[:, off:, off:] + self.weight * (cs[:, 1] - cs[:, 0])
        reg[:, :, off:, off:] = (1 - self.weight) * reg[:, :, off:, off:] + self.weight * rs
        return np.stack([np.zeros_like(logit), logit], axis=1), reg


def run_ensemble(args, sides: dict[str, list]) -> dict:
    v2, v3 = (str(TEACHERS / f"nanotrack_v{v}_onnx") for v in (2, 3))
    ens = Tracker(v2, threads=1, allow_ungated=True)
    ens.backend = EnsembleBackend(ens.backend, Tracker(v3, threads=1, allow_ungated=True).backend, args.weight)
    trackers = {"V2": Tracker(v2, threads=1, allow_ungated=True), "V3": Tracker(v3, threads=1, allow_ungated=True),
                f"V2+V3 ({args.weight:g})": ens}
    out: dict = {}
    for name, seqs in sides.items():
        for seq in seqs:
            cached = CachedSequence(seq)
            for label, tracker in trackers.items():
                out.setdefault(label, {}).setdefault(name, {})[seq.name] = auc_of(tracker, cached)
            print(f"[{name}] {seq.name}", file=sys.stderr, flush=True)
    return out


def run_decoding(args, sides: dict[str, list]) -> dict:
    from edgetrack.evaluation.calibrate import tracker_factory
    from edgetrack.evaluation.tuning import DecodingGrid, tune

    grid = DecodingGrid(*([v] for v in args.only)) if args.only else DecodingGrid()
    report = tune(tracker_factory(args.model), sides["train"], sides["val"], grid,
                  progress=lambda name: print(f"tracked {name}", file=sys.stderr, flush=True))
    return {"model": args.model, **report}


def ensemble_table(out: dict) -> str:
    lines = ["| teacher | training side AUC | held-out AUC |", "|---|---|---|"]
    for label, sides in out.items():
        lines.append(f"| {label} | {np.mean(list(sides['train'].values())):.3f} | "
                     f"{np.mean(list(sides['val'].values())):.3f} |")
    return "\n".join(lines)


def decoding_table(out: dict) -> str:
    t, c = out["tune_side"], out["check_side"]
    lines = ["| constants | training side AUC | held-out AUC |", "|---|---|---|"]
    for key in ("own", "chosen"):
        lines.append(f"| {key} {json.dumps(out[key])} | {t[key + '_auc']:.3f} | {c[key + '_auc']:.3f} |")
    return "\n".join(lines)


def plot(out: dict, mode: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    if mode == "ensemble":
        labels = list(out)
        for i, name in enumerate(("train", "val")):
            ax.bar(np.arange(len(labels)) + 0.4 * i, [np.mean(list(out[k][name].values())) for k in labels],
                   0.4, label={"train": "training side", "val": "held-out"}[name])
        ax.set_xticks(np.arange(len(labels)) + 0.2, labels)
    else:
        ax.plot(sorted(out["tune_side"]["per_setting"].values()), marker=".")
        ax.axhline(out["tune_side"]["own_auc"], color="k", ls="--", label="model's own constants")
        ax.set_xlabel("settings, sorted")
    ax.set_ylabel("success AUC")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=("ensemble", "decoding"))
    p.add_argument("--weight", type=float, default=0.5, help="V3's weight in the ensemble")
    p.add_argument("--model", default="default", help="model whose decoding constants are tuned")
    p.add_argument("--only", type=float, nargs=3, metavar=("WINDOW", "PENALTY_K", "LR"), default=None,
                   help="score this one setting (and the model's own on the held-out side) instead of the grid")
    p.add_argument("--shared", default=str(shared_dir()), help="folder with data/dev-sequences and "
                                                                 "data/train-videos")
    p.add_argument("--json", default=None, help="also write the JSON (and a PNG beside it) here")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")  # comparison graphs exported without a gate report
    parts = fit_and_eval_sets(args.shared)  # the same two sides edgetrack calibrate and tune use
    sides = {"train": list(parts["fit"].real), "val": list(parts["eval"].real)}
    out = run_ensemble(args, sides) if args.mode == "ensemble" else run_decoding(args, sides)
    print(json.dumps(out, indent=1))
    print(ensemble_table(out) if args.mode == "ensemble" else decoding_table(out))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1))
        plot(out, args.mode, path.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
