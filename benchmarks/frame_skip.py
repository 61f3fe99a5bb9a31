"""Accuracy when frames are dropped: every k-th frame only, so the target moves k times as far per update.

    python benchmarks/frame_skip.py --models default=default,teacher=runs/teachers/nanotrack_v2_onnx
    python benchmarks/frame_skip.py --side val --skips 1,2,3,4 --models a=DIR_A,b=DIR_B

Drone links and the live mode of ``edgetrack track`` drop frames when processing falls behind, and low-rate
footage (UAV123@10fps) moves far between frames: the search region has to hold the target's next position. This
tracks the dev split's sequences (``--side train``, the default: the side decisions are made on; ``val``: the
held-out sequences) keeping every k-th frame and its ground truth, short-term mode (no recovery while LOST, so
the search region alone is measured; ``--long-term``: as ``Tracker()`` runs), one thread, every model in the same
run. Reported: mean success AUC over
the sequences per model and k, and the drop from k = 1. Prints JSON and a markdown table; writes them and a PNG
(AUC against k) under ``--out``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgetrack.evaluation.trackers import shared_dir

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="default=default", help="name=model,... (bundled name, checkpoint or folder)")
    p.add_argument("--shared", default=str(shared_dir()), help="folder with data/dev-sequences")
    p.add_argument("--side", choices=("train", "val"), default="train", help="the dev split's side to track")
    p.add_argument("--skips", default="1,2,3", help="comma-separated k: keep every k-th frame")
    p.add_argument("--max-frames", type=int, default=None, help="cut every sequence to N frames first (smoke runs)")
    p.add_argument("--long-term", action="store_true", help="recovery while LOST on, as Tracker() runs")
    p.add_argument("--out", default=str(REPO / "runs" / "frame_skip"))
    return p.parse_args(argv)


def every_kth(seq, k: int):
    """``seq`` with every ``k``-th frame and its ground truth (frame 0 kept: the same init box)."""
    from edgetrack.data.sequence import Sequence

    return Sequence(name=seq.name, gt=seq.gt[::k], frame_paths=seq.frame_paths[::k], absent=seq.absent[::k],
                    attributes=dict(seq.attributes))


def sequences(shared: Path, side: str, max_frames: int | None):
    from edgetrack.evaluation.disappear import dev_sequences

    seqs = tuple(s.head(max_frames) for s in dev_sequences(shared, side))
    if not seqs:
        raise SystemExit(f"error: no dev sequences under {shared / 'data' / 'dev-sequences'}")
    return seqs


def run(args) -> dict:
    from edgetrack import Tracker
    from edgetrack.evaluation.runner import track_sequences
    from edgetrack.runtime.confidence import Recovery

    models = dict(item.split("=", 1) for item in args.models.split(",") if item)
    skips = [int(k) for k in args.skips.split(",")]
    if not models or any(k < 1 for k in skips):
        raise SystemExit("error: give --models name=model,... and --skips of positive integers")
    seqs = sequences(Path(args.shared), args.side, args.max_frames)
    results: dict[str, dict[str, dict]] = {name: {} for name in models}
    for k in skips:
        sub = tuple(every_kth(s, k) for s in seqs)
        for name, model in models.items():
            def make(model=model):
                return Tracker(model, threads=1, allow_ungated=True, recovery=Recovery(enabled=args.long_term))

            score = track_sequences(make, sub)
            results[name][str(k)] = {"auc": score.auc, "per_sequence": dict(zip([s.name for s in sub], score.aucs)),
                                     "update_ms_p50": score.update_ms_p50}
            print(f"{name} k={k}: AUC {score.auc:.3f}", file=sys.stderr, flush=True)
    return {"side": args.side, "mode": "long-term" if args.long_term else "short-term",
            "sequences": [s.name for s in seqs], "skips": skips, "models": models, "results": results}


def table(report: dict) -> str:
    skips = report["skips"]
    lines = ["| model | " + " | ".join(f"k={k}" for k in skips) + " | drop at k=" + str(skips[-1]) + " |",
             "|---|" + "---|" * (len(skips) + 1)]
    for name, by_k in report["results"].items():
        aucs = [by_k[str(k)]["auc"] for k in skips]
        lines.append(f"| {name} | " + " | ".join(f"{a:.3f}" for a in aucs) + f" | {aucs[-1] - aucs[0]:+.3f} |")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    from edgetrack.evaluation.plots import _figure, _save

    fig = _figure(5, 4)
    ax = fig.add_subplot(1, 1, 1)
    for name, by_k in report["results"].items():
        ax.plot(report["skips"], [by_k[str(k)]["auc"] for k in report["skips"]], marker="o", label=name)
    ax.set_xlabel("k (every k-th frame kept)")
    ax.set_ylabel("success AUC")
    ax.set_title(f"frames dropped: dev {report['side']} side, {report['mode']}", fontsize=9)
    ax.set_xticks(report["skips"])
    ax.legend(fontsize=8)
    _save(fig, path)


def main(argv=None) -> int:
    from edgetrack.evaluation.report import publish

    args = parse_args(argv)
    report = run(args)
    publish(report, table(report), args.out, "frame_skip", plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
