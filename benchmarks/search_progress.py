"""The dull student's policy search step by step: reward, accuracy and compression (the shape of TSsKD's Fig. 4).

    python benchmarks/search_progress.py --search runs/n2n_v2

Reads ``history.jsonl`` and ``teacher.json`` written by ``edgetrack-train search`` (nothing is re-run). Per policy
step: the mean and best reward of its ``N_a`` candidates, their mean accuracy relative to the teacher
(``acc_s / acc_t``, Eq. 7 on the search's fixed validation pairs), their mean compression (``C`` of Eq. 6: size,
or measured latency), and the parameters of the best candidate so far. Prints JSON and a table, writes
``search_progress.json`` and ``search_progress.png`` into the search folder.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _mean(cands: list[dict], key: str) -> float:
    return sum(c[key] for c in cands) / len(cands)


def progress(history: list[dict]) -> list[dict]:
    rows, best = [], None
    for h in history:
        cands = h["candidates"]
        top = max(cands, key=lambda c: c["reward"])
        best = top if best is None or top["reward"] > best["reward"] else best
        rows.append({"step": h["step"], "reward_mean": _mean(cands, "reward"), "reward_max": top["reward"],
                     "acc_ratio_mean": _mean(cands, "acc_ratio"), "compression_mean": _mean(cands, "compression"),
                     "size_compression_mean": _mean(cands, "size_compression"), "baseline": h["baseline"],
                     "best_so_far_reward": best["reward"], "best_so_far_params": best["params"],
                     "best_so_far_acc_ratio": best["acc_ratio"]})
    return rows


def table(rows: list[dict]) -> str:
    head = ["step", "reward mean", "reward max", "acc_s/acc_t mean", "C mean", "best reward", "best params",
            "best acc_s/acc_t"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append(f"| {r['step']} | {r['reward_mean']:.3f} | {r['reward_max']:.3f} | {r['acc_ratio_mean']:.3f} "
                     f"| {r['compression_mean']:.3f} | {r['best_so_far_reward']:.3f} | {r['best_so_far_params']} "
                     f"| {r['best_so_far_acc_ratio']:.3f} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, keys, title in ((axes[0], ("reward_mean", "reward_max", "baseline"), "reward"),
                            (axes[1], ("acc_ratio_mean",), "accuracy (acc_s / acc_t)"),
                            (axes[2], ("compression_mean", "size_compression_mean"), "compression C")):
        for key in keys:
            ax.plot(steps, [r[key] for r in rows], marker="o", label=key)
        ax.set_xlabel("policy step")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--search", type=Path, default=Path(__file__).resolve().parents[1] / "runs" / "n2n_v2")
    args = p.parse_args(argv)
    path = args.search / "history.jsonl"
    if not path.exists():
        raise SystemExit(f"error: {path} not found (run edgetrack-train search --out {args.search} first)")
    history = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = progress(history)
    teacher = json.loads((args.search / "teacher.json").read_text())
    spec = json.loads((args.search / "student_spec.json").read_text())
    result = {"teacher": teacher, "rows": rows,
              "found": {k: spec[k] for k in ("reward", "acc_ratio", "compression", "params", "cut") if k in spec}}
    text = json.dumps(result, indent=1)
    print(text)
    print(table(rows))
    (args.search / "search_progress.json").write_text(text + "\n")
    plot(rows, args.search / "search_progress.png")
    print(f"plot: {args.search / 'search_progress.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
