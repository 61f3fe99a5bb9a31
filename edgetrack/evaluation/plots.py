"""Success, precision and per-attribute plots (matplotlib's Agg canvas, imported only when plotting)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from edgetrack.data.fileio import atomic_write_bytes

_STYLES = ["-", "--", "-.", ":"]


def missing_matplotlib() -> str | None:
    """Why plots cannot be drawn here (matplotlib is not part of the base install), or None when they can."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "plots skipped: matplotlib is not installed; pip install 'edgetrack[dev]' adds them"
    return None


def _figure(width: float = 6.4, height: float = 4.8):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


def _ranked(report: dict, key: str) -> list[tuple[str, dict]]:
    items = [(n, e["overall"]) for n, e in report["trackers"].items() if e["overall"].get(key) is not None]
    return sorted(items, key=lambda kv: -kv[1][key])


def _curve_plot(report, path, curve_key, score_key, x, xlabel, title, legend_fmt) -> Path:
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for i, (name, overall) in enumerate(_ranked(report, score_key)):
        curve = overall.get(curve_key)
        if curve is None:
            continue
        ax.plot(x, curve, _STYLES[(i // 10) % len(_STYLES)], label=legend_fmt.format(name, overall[score_key]))
    ax.set(xlabel=xlabel, ylabel="fraction of frames", xlim=(x[0], x[-1]), ylim=(0, 1), title=title)
    ax.grid(True, alpha=0.4)
    if ax.lines:
        ax.legend(loc="lower left" if curve_key == "success_curve" else "lower right", fontsize=8)
    return _save(fig, path)


def plot_success(report: dict, path: str | os.PathLike) -> Path:
    """Success plot (fraction of frames with IoU > threshold) of every tracker, legend = AUC."""
    n = report["protocol"].get("n_iou_thresholds", 21)
    name = report["dataset"]["name"]
    return _curve_plot(report, path, "success_curve", "success_auc", np.linspace(0, 1, n),
                       "overlap threshold", f"Success plots of OPE on {name}", "{} [{:.3f}]")


def plot_precision(report: dict, path: str | os.PathLike) -> Path:
    """Precision plot (fraction of frames with centre error <= threshold) of every tracker, legend = P@20."""
    n = report["protocol"].get("n_center_thresholds", 51)
    name = report["dataset"]["name"]
    return _curve_plot(report, path, "precision_curve", "precision_20", np.arange(n),
                       "location error threshold (px)", f"Precision plots of OPE on {name}", "{} [{:.3f}]")


def plot_attributes(report: dict, path: str | os.PathLike) -> Path:
    """Grouped bars: success AUC of every tracker on each attribute's sequences."""
    names = [n for n, _ in _ranked(report, "success_auc")] or list(report["trackers"])
    present = {c for n in names for c in report["trackers"][n]["attributes"]}
    codes = [c for c in report["dataset"].get("attributes") or [] if c in present]
    fig = _figure(max(6.4, 0.9 * len(codes) + 2), 4.8)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(names))
    x = np.arange(len(codes))
    for i, name in enumerate(names):
        attrs = report["trackers"][name]["attributes"]
        values = [attrs.get(c, {}).get("success_auc") or 0.0 for c in codes]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
    counts = [max((report["trackers"][n]["attributes"].get(c, {}).get("n_sequences", 0) for n in names),
                  default=0) for c in codes]
    ax.set_xticks(x, [f"{c}\n({k})" for c, k in zip(codes, counts)])
    ax.set(ylabel="success AUC", ylim=(0, 1), title="Success AUC per attribute (sequences with it)")
    ax.grid(True, axis="y", alpha=0.4)
    if names:
        ax.legend(fontsize=8, ncol=min(3, len(names)))
    return _save(fig, path)
