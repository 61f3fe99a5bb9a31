"""The lost state on every sequence with absent frames: absent-frame detection, false LOST, re-acquisition, and
AUC with the long-term mode (``Recovery()``) on and off.

    python benchmarks/lost_state.py [--models default=default,accurate=accurate,teacher=runs/teachers/nanotrack_v2_onnx]

Sequences: the held-out set (``edgetrack.data.heldout.held_out_set``: dev val split, the pool's val rows and
data/val-videos) as they are (``clean``: every frame visible;
false LOST and AUC), the same with the target made absent for stretches (``gone``: covered by background, noise
frames, the camera elsewhere; see edgetrack/evaluation/disappear.py), and every real sequence with NaN ground
truth (``real-absent``: only uav123_10fps_group2_2 in this data, which is in the fitting split). Each model runs
one thread, long-term mode on and off, in the same run. ``--side fit`` runs the same on the training side (dev
train split and the pool's train rows with boxes): recovery settings (``--recovery tiles_every=1,...``) are chosen
there, then checked on the held-out side. Prints JSON and a table, writes them and a PNG under
``--out`` (per-sequence records cached there: a re-run reuses them, keyed by model and mode).

Metrics: ``absent_recall`` = share of absent frames flagged LOST or UNCERTAIN, ``absent_precision`` = share of
flagged frames that are absent, ``absent_lost`` = share of absent frames LOST, ``visible_lost`` = share of visible
frames LOST (target: <= 5% with absent_recall >= 50%); LOST run = consecutive visible frames LOST (its mean and
median length, and the mean IoU of the box reported on them: how long a visible target is given up, and how far
the held box is from it); re-acquisition = the target found again after an absent
stretch (IoU >= 0.3 and not LOST) before the sequence ends, ``delay`` = frames from its reappearance; AUC =
success AUC over the visible frames of every update (frame 0 not counted), mean over sequences.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from edgetrack.evaluation.trackers import shared_dir

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = f"default=default,accurate=accurate,teacher={REPO / 'runs' / 'teachers' / 'nanotrack_v2_onnx'}"
REACQUIRE_IOU = 0.3


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=DEFAULT_MODELS, help="name=model,... (bundled name, checkpoint or folder)")
    p.add_argument("--shared", default=str(shared_dir()), help="folder with data/dev-sequences, data/train-videos")
    p.add_argument("--out", default=str(REPO / "runs" / "lost_state"))
    p.add_argument("--max-frames", type=int, default=None, help="cut every sequence to N frames (smoke runs)")
    p.add_argument("--side", choices=("eval", "fit"), default="eval",
                   help="eval: the held-out rows (default); fit: the training side (dev train split + the pool's "
                        "train rows with boxes), where recovery settings are chosen")
    p.add_argument("--recovery", default="", metavar="KEY=VALUE,...",
                   help="Recovery fields of the long-term mode (e.g. tiles_every=1,max_factor=3); default Recovery()")
    return p.parse_args(argv)


def recovery_of(text: str, long_term: bool):
    """``Recovery`` from ``key=value,...`` (numbers; fields of :class:`~edgetrack.runtime.confidence.Recovery`)."""
    from dataclasses import fields

    from edgetrack.runtime.confidence import Recovery

    if not long_term:
        return Recovery(enabled=False)
    known = {f.name: f.type for f in fields(Recovery)} if text else {}
    values = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in known or key == "enabled":
            raise SystemExit(f"error: --recovery: unknown field {key!r} (known: {sorted(set(known) - {'enabled'})})")
        values[key] = int(value) if known[key] in ("int", int) else float(value)
    return Recovery(**values)


def factory(model: str, recovery):
    from edgetrack.errors import UngatedModelWarning
    from edgetrack.runtime.tracker import Tracker

    def make():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UngatedModelWarning)
            return Tracker(model, threads=1, allow_ungated=True, recovery=recovery)

    return make


def sets(shared: Path, max_frames, side: str = "eval"):
    from edgetrack.data import open_dataset
    from edgetrack.evaluation.disappear import fit_and_eval_sets

    held = fit_and_eval_sets(shared, max_frames)[side]
    dev = open_dataset(shared / "data" / "dev-sequences", "folder")
    real = tuple(s.head(max_frames) for s in dev if s.absent.any())
    return {"clean": held.real, "gone": held.gone, "real-absent": real}


def reacquisition(frames) -> tuple[int, int, list[int]]:
    """(stretches followed by visible frames, re-acquired, delays) over the sequences of ``frames``."""
    events = found = 0
    delays = []
    for name in dict.fromkeys(frames.group):
        idx = np.flatnonzero(frames.group == name)
        absent, iou, lost = frames.absent[idx], frames.iou[idx], frames.state[idx] == "lost"
        ends = np.flatnonzero(absent[:-1] & ~absent[1:]) + 1  # first visible frame after a stretch
        for r in ends:
            events += 1
            nxt = np.flatnonzero(absent[r:])
            stop = r + (nxt[0] if len(nxt) else len(absent) - r)
            ok = np.flatnonzero((iou[r:stop] >= REACQUIRE_IOU) & ~lost[r:stop])
            if len(ok):
                found += 1
                delays.append(int(ok[0]))
    return events, found, delays


def lost_runs(frames) -> dict:
    """LOST on visible frames: the runs of consecutive visible LOST frames (an absent frame or another state ends
    one), their mean and median length, and the mean IoU of the box reported on those frames (the last trusted
    box) with the true one."""
    runs, ious = [], []
    for name in dict.fromkeys(frames.group):
        idx = np.flatnonzero(frames.group == name)
        on = ~frames.absent[idx] & (frames.state[idx] == "lost")
        ious += frames.iou[idx][on].tolist()
        edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
        runs += (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist()
    return {"lost_runs": len(runs), "lost_run_mean": float(np.mean(runs)) if runs else float("nan"),
            "lost_run_median": float(np.median(runs)) if runs else float("nan"),
            "lost_iou_mean": float(np.mean(ious)) if ious else float("nan")}


def auc(frames, where=None) -> float:
    """Mean over sequences of the success AUC on their visible frames (only the frames ``where`` when given)."""
    from edgetrack.evaluation.metrics import success_curve

    out = []
    for name in dict.fromkeys(frames.group):
        keep = (frames.group == name) & ~frames.absent & (True if where is None else where)
        if keep.any():
            out.append(float(np.mean(success_curve(frames.iou[keep]))))
    return float(np.mean(out)) if out else float("nan")


def summarise(frames) -> dict:
    from edgetrack.evaluation.calibrate import metrics_by_source

    events, found, delays = reacquisition(frames)
    out = metrics_by_source(frames, frames.state)
    for src in out:
        if src != "overall":
            out[src]["auc"] = auc(frames, frames.source == src)
    out["overall"].update({"auc": auc(frames), "update_ms_p50": float(np.median(frames.ms)),
                           "stretches": events, "reacquired": found,
                           "reacquire_rate": found / events if events else float("nan"),
                           "delay_median": float(np.median(delays)) if delays else float("nan"),
                           **lost_runs(frames)})
    return out


def run_key(model: str, mode: str) -> str:
    """Cache key: the model's whole spec (calibration included), where it is, the mode (with its Recovery) and the
    runtime's source (a change to how the tracker searches while LOST is a new run)."""
    import hashlib

    import edgetrack.runtime as runtime
    from edgetrack.runtime.model_files import locate

    files = locate(model)
    code = b"".join(p.read_bytes() for p in sorted(Path(runtime.__file__).parent.glob("*.py")))
    text = files.spec.to_json() + str(Path(files.root).resolve()) + mode
    return hashlib.sha256(text.encode() + code).hexdigest()[:16]


def run(args) -> dict:
    from edgetrack.evaluation.calibration_fit import collect

    shared, out = Path(args.shared), Path(args.out)
    parts = sets(shared, args.max_frames, args.side)
    empty = [part for part, seqs in parts.items() if not seqs]
    if empty:
        raise SystemExit(f"error: no sequences in {', '.join(empty)} under {shared / 'data'} (with --max-frames "
                         f"{args.max_frames}: too short for a disappearance?)")
    models = dict(item.split("=", 1) for item in args.models.split(",") if item)
    results = {}
    for name, model in models.items():
        for mode, long_term in (("long-term", True), ("short-term", False)):
            recovery = recovery_of(args.recovery, long_term)
            cache = out / "cache" / f"{name}-{run_key(model, mode + repr(recovery))}"
            for part, seqs in parts.items():
                frames = collect(factory(model, recovery), seqs, cache / part, label=f"{name} {mode} {part}")
                results.setdefault(name, {}).setdefault(mode, {})[part] = summarise(frames)
    return {"models": models, "side": args.side, "recovery": repr(recovery_of(args.recovery, True)),
            "sequences": {k: [s.name for s in v] for k, v in parts.items()}, "results": results}


def table(report: dict) -> str:
    lines = ["| model | mode | set | absent flagged | precision | absent LOST | visible LOST | LOST run mean / "
             "median | IoU while LOST | re-acq. | delay | AUC | ms p50 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, modes in report["results"].items():
        for mode, parts in modes.items():
            for part, res in parts.items():
                o = res["overall"]
                lines.append(f"| {name} | {mode} | {part} | {o['absent_recall']:.3f} | {o['absent_precision']:.3f} | "
                             f"{o['absent_lost']:.3f} | {o['visible_lost']:.3f} | {o['lost_run_mean']:.1f} / "
                             f"{o['lost_run_median']:.0f} | {o['lost_iou_mean']:.3f} | "
                             f"{o['reacquired']}/{o['stretches']} | {o['delay_median']:.0f} | {o['auc']:.3f} | "
                             f"{o['update_ms_p50']:.2f} |")
    lines += ["", "Per source, `gone` set: absent flagged / absent LOST / visible LOST, long-term (short-term)", "",
              "| model | source | frames | absent | absent flagged | absent LOST | visible LOST |",
              "|---|---|---|---|---|---|---|"]
    for name, modes in report["results"].items():
        for src, lt in modes["long-term"]["gone"].items():
            st = modes["short-term"]["gone"][src]
            cells = [f"{lt[k]:.3f} ({st[k]:.3f})" for k in ("absent_recall", "absent_lost", "visible_lost")]
            lines.append(f"| {name} | {src} | {lt['frames']} | {lt['absent']} | {' | '.join(cells)} |")
    return "\n".join(lines).replace("nan", "-")


def recovery_verdicts(report: dict, tolerance: float = 0.005) -> dict[str, dict]:
    """Per model, on the held-out sequences as they are (``clean``): AUC with the long-term mode on and off,
    overall and per source, and whether it earns its place (on >= off - ``tolerance`` everywhere)."""
    out = {}
    for name, modes in report["results"].items():
        lt, st = modes["long-term"]["clean"], modes["short-term"]["clean"]
        diffs = {src: lt[src]["auc"] - st[src]["auc"] for src in lt if src in st
                 and not np.isnan(lt[src].get("auc", np.nan)) and not np.isnan(st[src].get("auc", np.nan))}
        worse = sorted(src for src, d in diffs.items() if d < -tolerance)
        out[name] = {"auc_on": lt["overall"]["auc"], "auc_off": st["overall"]["auc"], "by_source": diffs,
                     "worse_by_more_than": tolerance, "worse_sources": worse, "earns_its_place": not worse}
    return out


def verdict_table(verdicts: dict) -> str:
    lines = ["", "Long-term mode on held-out footage (`clean`): AUC on / off, and the sources where it costs more "
                 "than 0.005", "",
             "| model | AUC on | AUC off | on - off | worst source (on - off) | earns its place |",
             "|---|---|---|---|---|---|"]
    for name, v in verdicts.items():
        worst = min(v["by_source"].items(), key=lambda kv: kv[1], default=("-", float("nan")))
        lines.append(f"| {name} | {v['auc_on']:.3f} | {v['auc_off']:.3f} | {v['auc_on'] - v['auc_off']:+.3f} | "
                     f"{worst[0]} ({worst[1]:+.3f}) | "
                     f"{'yes' if v['earns_its_place'] else 'no: ' + ', '.join(v['worse_sources'])} |")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    from edgetrack.evaluation.plots import _figure, _save

    fig = _figure(10, 4)
    names = list(report["results"])
    keys = (("absent_recall", "absent flagged"), ("visible_lost", "visible LOST"), ("auc", "AUC"))
    for k, (key, title) in enumerate(keys):
        ax = fig.add_subplot(1, 3, k + 1)
        for j, mode in enumerate(("long-term", "short-term")):
            vals = [report["results"][n][mode]["gone"]["overall"][key] for n in names]
            ax.bar(np.arange(len(names)) + 0.4 * j - 0.2, vals, 0.4, label=mode)
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_title(f"{title} (gone)", fontsize=9)
        if key == "visible_lost":
            ax.axhline(0.05, color="k", lw=0.8, ls="--")
        if key == "absent_recall":
            ax.axhline(0.5, color="k", lw=0.8, ls="--")
        ax.legend(fontsize=7)
    _save(fig, path)


def main(argv=None) -> int:
    from edgetrack.evaluation.report import publish

    args = parse_args(argv)
    teacher = Path(DEFAULT_MODELS.rsplit("=", 1)[1])
    if "teacher=" + str(teacher) in args.models and not teacher.exists():
        raise SystemExit(f"error: {teacher} not found: python benchmarks/prepare_teachers.py writes it")
    report = run(args)
    report["long_term_verdicts"] = recovery_verdicts(report)
    text = table(report) + "\n" + verdict_table(report["long_term_verdicts"])
    publish(report, text, args.out, "lost_state", plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
