"""Soak: resident memory and latency over many updates of one tracker, against bare onnxruntime references.

    python benchmarks/soak.py                                   # 10,000 updates per variant, a few minutes
    python benchmarks/soak.py --updates 2000 --variants edgetrack,ort-only
    python benchmarks/soak.py --torch                           # adds the bundled checkpoint on torch

Frames: the first ``--frames`` frames of a real dev sequence (``$EDGETRACK_SHARED`` or ../shared), decoded into
memory before anything is measured and played forwards and backwards (continuous motion, no decoding in the
loop); a synthetic clip when the data is absent. Every variant runs in a fresh child process with the same
imports and the same frames, one thread (``OMP_NUM_THREADS=1``, intra-op 1), and ``--warmup`` updates before
the measured ones:

- ``edgetrack``: ``Tracker()`` (the bundled default) on onnxruntime with the runtime's session settings;
- ``bare-session``: the same tracker, its two sessions built with onnxruntime's default options (one thread);
- ``no-arena`` / ``no-mem-pattern``: the runtime's settings with ``enable_cpu_mem_arena`` /
  ``enable_mem_pattern`` off;
- ``ort-only``: no tracker at all: the search graph alone on crops cut at the ground-truth box;
- ``tracemalloc``: ``edgetrack`` with Python's allocation tracing on (Python-side growth, top growing lines);
- ``openvino``: ``Tracker(backend="openvino")`` when openvino is installed; ``torch`` with ``--torch``.

Per variant: RSS at the start (after warm-up), end and peak; growth in MB per 1,000 updates (least squares over
all updates and over the second half); RSS after ``malloc_trim`` (memory freed but kept by the C allocator comes
back, a leak does not); median update ms of the first and last ``--window`` updates. Prints JSON and a markdown
table; writes ``report.json`` and ``soak.png`` (RSS and latency over updates) into ``--out``.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from importlib.util import find_spec
from pathlib import Path

import numpy as np

VARIANTS = ("edgetrack", "bare-session", "no-arena", "no-mem-pattern", "ort-only", "tracemalloc", "openvino",
            "torch")
DEFAULT_VARIANTS = "edgetrack,bare-session,no-arena,no-mem-pattern,ort-only,tracemalloc,openvino"
_OPTION_OVERRIDES = {"no-arena": {"enable_cpu_mem_arena": False}, "no-mem-pattern": {"enable_mem_pattern": False}}
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 4096 / 2**20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--updates", type=int, default=10_000, help="measured updates per variant")
    p.add_argument("--warmup", type=int, default=200, help="updates before the measurement starts")
    p.add_argument("--window", type=int, default=1000, help="updates in the first/last latency windows")
    p.add_argument("--data", default=None, help="dev-sequences folder (default: $EDGETRACK_SHARED or ../shared)")
    p.add_argument("--sequence", default="uav123_10fps_wakeboard5", help="dev sequence to play")
    p.add_argument("--frames", type=int, default=200, help="frames of it held in memory")
    p.add_argument("--model", default=None, help="model (default: the bundled default)")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated, from {', '.join(VARIANTS)}")
    p.add_argument("--torch", action="store_true", help="add the bundled checkpoint on the torch backend")
    p.add_argument("--out", default="runs/soak", help="folder for report.json and soak.png")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.updates < 2 * args.window or args.window < 1 or args.warmup < 0 or args.frames < 2:
        p.error("need --updates >= 2 x --window, --window >= 1, --warmup >= 0, --frames >= 2")
    return args


# ---------------------------------------------------------------- measurement (child process)

def rss_mb() -> tuple[float, float]:
    """This process's resident set size now and the part of it that is file-backed (library code and data
    paged in from disk, shared memory), in MB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        fields = f.read().split()
    return int(fields[1]) * _PAGE_MB, int(fields[2]) * _PAGE_MB


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def malloc_trim() -> bool:
    """Hand memory the C allocator keeps free back to the OS (glibc); False where there is no malloc_trim."""
    libc = _libc()
    if libc is None or not hasattr(libc, "malloc_trim"):
        return False
    libc.malloc_trim(0)
    return True


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_in_use_mb() -> float:
    """Bytes the C allocator has handed out and not had back (glibc ``mallinfo2``: heap plus mmapped blocks),
    in MB; NaN where unavailable. Unlike RSS it does not count memory freed but kept by the allocator."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return float("nan")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20


def load_frames(args) -> tuple[list[np.ndarray], np.ndarray, str]:
    """(frames, boxes, where from): the dev sequence when present, else a synthetic clip."""
    import cv2

    from edgetrack.data.gtfile import read_boxes
    from edgetrack.evaluation.trackers import shared_dir

    folder = Path(args.data or shared_dir() / "data" / "dev-sequences") / args.sequence
    files = sorted((folder / "img").glob("*.jpg"))[: args.frames]
    if len(files) >= 2:
        frames = [cv2.imread(str(f)) for f in files]
        return frames, read_boxes(folder / "groundtruth_rect.txt")[: len(files)], f"{args.sequence} (real)"
    from edgetrack.data.synthetic import make_sequence

    frames, gt = make_sequence(0, args.frames, (640, 360), ())
    return list(frames), np.asarray(gt, dtype=np.float64), "synthetic (no dev sequences found)"


def ping_pong(n_frames: int, count: int) -> np.ndarray:
    """Frame indices 0, 1, ..., n-1, n-2, ..., 1, 0, 1, ...: ``count`` of them, motion never jumps."""
    cycle = np.concatenate([np.arange(n_frames), np.arange(n_frames - 2, 0, -1)])
    return np.resize(cycle, count)


def patch_session_options(variant: str) -> None:
    """For the option variants, change how onnxruntime sessions are built in this process only."""
    if variant not in _OPTION_OVERRIDES and variant != "bare-session":
        return
    import onnxruntime as ort

    original = ort.InferenceSession

    def build(path, sess_options=None, providers=None, **kwargs):
        if variant == "bare-session":
            sess_options = ort.SessionOptions()
            sess_options.intra_op_num_threads = 1  # the default would take every core
        for key, value in _OPTION_OVERRIDES.get(variant, {}).items():
            setattr(sess_options, key, value)
        return original(path, sess_options=sess_options, providers=providers, **kwargs)

    ort.InferenceSession = build


def tracker_step(variant: str, model, frames, boxes):
    """init on frame 0 and return ``step(frame, box)`` for a tracker variant."""
    from edgetrack import Tracker
    from edgetrack.runtime.registry import DEFAULT_NAME, bundled_dir

    if variant == "torch":
        tracker = Tracker(model or bundled_dir(DEFAULT_NAME) / "model.safetensors", backend="torch", threads=1)
    else:
        tracker = Tracker(model, backend="openvino" if variant == "openvino" else "onnxruntime", threads=1)
    tracker.warmup()
    tracker.init(frames[0], boxes[0])
    return lambda frame, box: tracker.update(frame)


def ort_only_step(model, frames, boxes):
    """The search graph alone, through the runtime's session builder, on crops at the ground-truth box."""
    from edgetrack.geometry import context_size, crop_square, padding_colour, to_network_input, xywh_to_cxcywh
    from edgetrack.runtime.backends.ort import create_session
    from edgetrack.runtime.model_files import locate

    files = locate(model)
    spec = files.spec
    tmpl, search = create_session(files.graph("onnx", "template")), create_session(files.graph("onnx", "search"))
    fill = padding_colour(frames[0])
    cx, cy, w, h = xywh_to_cxcywh(boxes[0])
    side = context_size(w, h, spec.context_amount)
    z = to_network_input(crop_square(frames[0], (cx, cy), side, spec.exemplar_size, fill)[None], spec.mean,
                         spec.std, False)
    zfs = tmpl.run(None, {tmpl.get_inputs()[0].name: z})
    names = [i.name for i in search.get_inputs()]
    x_name = next(n for n in names if n not in {o.name for o in tmpl.get_outputs()})
    feeds = dict(zip([o.name for o in tmpl.get_outputs()], zfs))
    last = boxes[0]

    def step(frame, box):
        nonlocal last
        last = box if np.all(np.isfinite(box)) else last
        bx, by, bw, bh = xywh_to_cxcywh(last)
        s_x = context_size(bw, bh, spec.context_amount) * spec.instance_size / spec.exemplar_size
        crop = crop_square(frame, (bx, by), s_x, spec.instance_size, fill)
        return search.run(None, {x_name: to_network_input(crop[None], spec.mean, spec.std, False), **feeds})

    return step


def measure(args) -> dict:
    """One variant in this process: warm-up, then ``--updates`` timed updates with RSS after each (and the
    memory Python has allocated, for the tracemalloc variant)."""
    variant, traced = args.child, args.child == "tracemalloc"
    frames, boxes, source = load_frames(args)
    patch_session_options(variant)
    step = (ort_only_step(args.model, frames, boxes) if variant == "ort-only"
            else tracker_step(variant, args.model, frames, boxes))
    order = ping_pong(len(frames), args.warmup + args.updates + 1)[1:]
    # Result arrays made and written, and garbage collected, before the warm-up: the kernel's RSS count lags a
    # little, and pages touched (or freed) just before the start would show up as growth at the first update.
    mem, lat = np.full((args.updates, 3), np.nan), np.full(args.updates, np.nan)
    gc.collect()
    for i in order[: args.warmup]:
        step(frames[i], boxes[i])
    if traced:
        tracemalloc.start(8)
        snap0 = tracemalloc.take_snapshot()
    start = (*rss_mb(), tracemalloc.get_traced_memory()[0] / 2**20)
    start_heap = heap_in_use_mb()
    for k, i in enumerate(order[args.warmup:]):
        t0 = time.perf_counter()
        step(frames[i], boxes[i])
        lat[k] = (time.perf_counter() - t0) * 1000.0
        mem[k, :2] = rss_mb()
        if traced:
            mem[k, 2] = tracemalloc.get_traced_memory()[0] / 2**20
    out = {"python_top": python_top(snap0)} if traced else {}
    out.update({"variant": variant, "source": source, "frames": len(frames), "rss_start_mb": start[0],
                "file_start_mb": start[1], "python_start_mb": start[2], "heap_start_mb": start_heap,
                "heap_end_mb": heap_in_use_mb(), "rss_mb": mem[:, 0].tolist(), "file_mb": mem[:, 1].tolist(),
                "python_mb": mem[:, 2].tolist() if traced else None, "latency_ms": lat.tolist()})
    gc.collect()
    out["trimmed"] = malloc_trim()
    out["rss_after_trim_mb"] = rss_mb()[0]
    return out


def python_top(snap0) -> list[dict]:
    """The lines whose Python allocations grew most during the measured updates."""
    stats = tracemalloc.take_snapshot().compare_to(snap0, "lineno")
    return [{"where": str(s.traceback[0]), "kb": s.size_diff / 1024, "blocks": s.count_diff}
            for s in stats[:5] if s.size_diff > 0]


# ---------------------------------------------------------------- orchestration (parent process)

def available(variant: str) -> str:
    """Why a variant cannot run here ('' when it can)."""
    if variant == "openvino" and find_spec("openvino") is None:
        return "openvino is not installed"
    if variant == "torch" and find_spec("torch") is None:
        return "torch is not installed"
    return ""


def run_child(variant: str, argv: list[str], out_dir: Path) -> dict:
    path = out_dir / f"{variant}.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--child", variant, "--child-out", str(path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"variant": variant, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(path.read_text())


def slope_per_1000(values: np.ndarray) -> float:
    """Least-squares growth in MB per 1,000 updates."""
    return float(np.polyfit(np.arange(len(values)), values, 1)[0] * 1000.0)


def summarise(raw: dict, window: int) -> dict:
    if "error" in raw:
        return {"error": raw["error"]}
    rss, lat, file = np.asarray(raw["rss_mb"]), np.asarray(raw["latency_ms"]), np.asarray(raw["file_mb"])
    half, start = len(rss) // 2, raw["rss_start_mb"]
    rises = np.flatnonzero(np.diff(np.concatenate([[start], rss])) > 0)
    first, last = float(np.median(lat[:window])), float(np.median(lat[-window:]))
    row = {"updates": len(rss), "rss_start_mb": start, "rss_end_mb": float(rss[-1]), "rss_peak_mb": float(rss.max()),
           "growth_mb": float(rss[-1] - start), "growth_first_half_mb": float(rss[half - 1] - start),
           "growth_second_half_mb": float(rss[-1] - rss[half - 1]),
           "file_backed_growth_mb": float(file[-1] - raw["file_start_mb"]),
           "mb_per_1000": slope_per_1000(rss), "mb_per_1000_second_half": slope_per_1000(rss[half:]),
           "last_rise_at_update": int(rises[-1]) + 1 if len(rises) else 0,
           "heap_in_use_growth_mb": raw["heap_end_mb"] - raw["heap_start_mb"],
           "rss_after_trim_mb": raw["rss_after_trim_mb"], "latency_first_ms": first, "latency_last_ms": last,
           "latency_drift_pct": (last - first) / first * 100.0, "latency_median_ms": float(np.median(lat))}
    if raw.get("python_mb"):
        py = np.asarray(raw["python_mb"])
        row.update({"python_growth_first_half_mb": float(py[half - 1] - raw["python_start_mb"]),
                    "python_growth_second_half_mb": float(py[-1] - py[half - 1]), "python_top": raw["python_top"]})
    return row


def table(rows: dict, window: int) -> str:
    head = ["variant", "RSS start / end / peak MB", "growth 1st / 2nd half MB", "of it file-backed MB",
            "MB per 1,000 all / 2nd half", "last rise at update", "C heap in use growth MB", "RSS after trim MB",
            f"update ms first / last {window}", "drift"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        if "error" in r or "skipped" in r:
            lines.append(f"| {name} | {r.get('error') or r.get('skipped')} |" + " |" * (len(head) - 2))
            continue
        cells = [name, f"{r['rss_start_mb']:.1f} / {r['rss_end_mb']:.1f} / {r['rss_peak_mb']:.1f}",
                 f"{r['growth_first_half_mb']:+.2f} / {r['growth_second_half_mb']:+.2f}",
                 f"{r['file_backed_growth_mb']:+.2f}",
                 f"{r['mb_per_1000']:+.3f} / {r['mb_per_1000_second_half']:+.3f}", str(r["last_rise_at_update"]),
                 f"{r['heap_in_use_growth_mb']:+.3f}", f"{r['rss_after_trim_mb']:.1f}",
                 f"{r['latency_first_ms']:.3f} / {r['latency_last_ms']:.3f}", f"{r['latency_drift_pct']:+.1f}%"]
        lines.append("| " + " | ".join(cells) + " |")
    for name, r in rows.items():
        if "python_growth_first_half_mb" in r:
            lines.append(f"\n{name}: memory Python allocated grew {r['python_growth_first_half_mb']:+.3f} MB in the "
                         f"first half and {r['python_growth_second_half_mb']:+.3f} MB in the second")
    return "\n".join(lines)


def plot(raws: dict, path: Path, window: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rss, ax_lat) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    smooth = max(1, window // 10)
    for name, raw in raws.items():
        if "error" in raw:
            continue
        rss, lat = np.asarray(raw["rss_mb"]), np.asarray(raw["latency_ms"])
        ax_rss.plot(rss - raw["rss_start_mb"], label=name, lw=1)
        rolled = np.convolve(lat, np.ones(smooth) / smooth, mode="valid")
        ax_lat.plot(np.arange(len(rolled)) + smooth - 1, rolled, label=name, lw=1)
    ax_rss.set_ylabel("RSS growth since start (MB)")
    ax_lat.set_ylabel(f"update ms (mean of {smooth})")
    ax_lat.set_xlabel("update")
    ax_rss.legend(fontsize=8)
    ax_rss.grid(alpha=0.3)
    ax_lat.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.child:
        Path(args.child_out).write_text(json.dumps(measure(args)))
        return 0
    if not Path("/proc/self/statm").exists():
        print("error: the soak reads resident memory from /proc (Linux only)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = [v.strip() for v in args.variants.split(",") if v.strip()] + (["torch"] * args.torch)
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        print(f"error: unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    raws, rows = {}, {}
    for name in dict.fromkeys(names):
        why = available(name)
        if why:
            rows[name] = {"skipped": why}
            continue
        print(f"soak: {name} ({args.updates} updates)...", file=sys.stderr, flush=True)
        raws[name] = run_child(name, argv, out)
        rows[name] = summarise(raws[name], args.window)
    source = next((r["source"] for r in raws.values() if "source" in r), "")
    report = {"updates": args.updates, "warmup": args.warmup, "window": args.window, "frames": source,
              "threads": 1, "variants": rows}
    text = json.dumps(report, indent=2)
    print(text)
    (out / "report.json").write_text(text + "\n")
    plot(raws, out / "soak.png", args.window)
    print(table(rows, args.window))
    failed = [n for n, r in rows.items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
