"""One-pass evaluation runner: every tracker over every sequence, resumable, optionally in worker processes.

Per frame it times the ``update`` call alone (frame decoding is timed separately), and per sequence the
``init`` call and the tracker's construction. With ``workers >= 1`` each tracker runs in its own pool of
freshly spawned processes pinned to one compute thread, so the peak RSS reported is that tracker's own.
"""
from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from edgetrack.data.sequence import Dataset, Sequence
from edgetrack.errors import EdgeTrackError, InputError

from .identity import check_identity, tracker_identity
from .metrics import score_sequence
from .results import SequenceRecord, is_complete, write_record
from .trackers import THREAD_ENV, TrackerFactory, pin_threads, read_prediction


@dataclass(frozen=True)
class Outcome:
    """How one (tracker, sequence) pair went: ``done``, ``skipped`` (complete results found) or ``failed``."""

    tracker: str
    sequence: str
    status: str
    message: str = ""
    seconds: float = 0.0


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``: ``getrusage``'s ``ru_maxrss`` survives ``exec``,
    so a spawned worker would inherit its parent's peak. Elsewhere ``ru_maxrss`` is used.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def track_sequence(tracker: Any, seq: Sequence) -> SequenceRecord:
    """Run an already-built tracker over ``seq`` (init on frame 0 with the ground truth)."""
    n = len(seq)
    boxes = np.empty((n, 4))
    update_ms, decode_ms, scores = np.full(n, np.nan), np.empty(n), np.full(n, np.nan)
    box = seq.init_box
    init_ms = math.nan
    for i in range(n):
        t0 = time.perf_counter()
        frame = seq.frame(i)
        t1 = time.perf_counter()
        decode_ms[i] = (t1 - t0) * 1e3
        if i == 0:
            tracker.init(frame, box)
            init_ms = (time.perf_counter() - t1) * 1e3
        else:
            out = tracker.update(frame)
            update_ms[i] = (time.perf_counter() - t1) * 1e3
            pred = read_prediction(out, box)
            box, scores[i] = pred.box, pred.score
        boxes[i] = box
    boxes[0] = seq.gt[0]
    return SequenceRecord(boxes, update_ms, decode_ms, scores, init_ms)


@dataclass(frozen=True)
class TrackingScore:
    """Per-sequence success AUCs and the median ``update`` latency over every frame."""

    aucs: tuple[float, ...]
    update_ms_p50: float

    @property
    def auc(self) -> float:
        return float(np.mean(self.aucs)) if self.aucs else math.nan


def track_sequences(make_tracker: Callable[[], object], sequences: tuple[Sequence, ...]) -> TrackingScore:
    """One-pass evaluation: success AUC per sequence and the median update latency."""
    aucs, times = [], []
    for seq in sequences:
        record = track_sequence(make_tracker(), seq)
        curves = score_sequence(record.boxes, seq.gt, seq.absent)
        aucs.append(float(curves.success_auc))
        times.append(record.update_ms[1:])
    p50 = float(np.nanmedian(np.concatenate(times))) if times else math.nan
    return TrackingScore(tuple(aucs), p50)


def _model_size_mb(factory: TrackerFactory, tracker: Any) -> float | None:
    """Size of the model files on disk: from the factory, else from the built tracker
    (``tracker.model_path`` or edgetrack's ``tracker.files.root``)."""
    files = factory.model_files()
    if not files:
        path = getattr(tracker, "model_path", None) or getattr(getattr(tracker, "files", None), "root", None)
        path = Path(path) if path else None
        if path is not None and path.is_file():
            files = [path]
        elif path is not None and path.is_dir():
            files = [p for p in path.rglob("*") if p.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20 if files else None


def run_task(factory: TrackerFactory, seq: Sequence, out_dir: str, rss_scope: str = "worker") -> Outcome:
    """Build a tracker, run it over ``seq`` and write the results; never raises on tracker errors."""
    start = time.perf_counter()
    rss_before = peak_rss_mb()
    try:
        t0 = time.perf_counter()
        tracker = factory.build()
        load_ms = (time.perf_counter() - t0) * 1e3
        record = track_sequence(tracker, seq)
        info = {
            "kind": factory.kind,
            "backend": factory.backend,
            "threads": factory.threads,
            "peak_rss_mb": peak_rss_mb(),
            "rss_before_mb": rss_before,
            "rss_scope": rss_scope,
            "model_size_mb": _model_size_mb(factory, tracker),
            "frame_shape": list(seq.frame(0).shape),
        }
        record = SequenceRecord(record.boxes, record.update_ms, record.decode_ms, record.scores,
                                record.init_ms, load_ms, info)
        write_record(out_dir, factory.label, seq.name, record)
    except Exception as e:  # a tracker crash must not end the run
        return Outcome(factory.label, seq.name, "failed", f"{type(e).__name__}: {e}", time.perf_counter() - start)
    return Outcome(factory.label, seq.name, "done", "", time.perf_counter() - start)


def _init_worker() -> None:
    pin_threads()
    _quiet_opencv()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """Stop this worker soon after the process that spawned it is killed (results on disk stay valid)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _quiet_opencv() -> int:
    """Silence OpenCV's warnings (its DNN peers warn on every construction); return the old level."""
    import cv2

    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return previous


@contextlib.contextmanager
def _single_thread_env():
    """Set the thread env vars for spawned children (they read them at import), then restore them."""
    saved = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update({k: "1" for k in THREAD_ENV})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def check_factory(factory: TrackerFactory) -> str | None:
    """Build the tracker once; return the error message when it cannot be built."""
    import cv2

    level = _quiet_opencv()
    try:
        factory.build()
    except (EdgeTrackError, ImportError, OSError, ValueError, TypeError) as e:
        return str(e) or type(e).__name__
    except Exception as e:  # cv2.error and friends
        return f"{type(e).__name__}: {e}"
    finally:
        cv2.utils.logging.setLogLevel(level)
    return None


def _run_in_process(factory, seqs, out_dir, bar) -> list[Outcome]:
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        outcomes = []
        for seq in seqs:
            outcomes.append(run_task(factory, seq, out_dir, rss_scope="process"))
            _report(bar, outcomes[-1])
        return outcomes
    finally:
        cv2.setNumThreads(previous)


def _run_in_pool(factory, seqs, out_dir, workers, bar) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with _single_thread_env(), ProcessPoolExecutor(
        max_workers=min(workers, len(seqs)), mp_context=mp.get_context("spawn"), initializer=_init_worker
    ) as pool:
        futures = {pool.submit(run_task, factory, seq, out_dir): seq.name for seq in seqs}
        try:
            for fut in as_completed(futures):
                try:
                    outcome = fut.result()
                except BrokenProcessPool as e:
                    outcome = Outcome(factory.label, futures[fut], "failed", f"worker process died ({e})")
                outcomes.append(outcome)
                _report(bar, outcome)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return outcomes


def _report(bar, outcome: Outcome) -> None:
    if bar is not None:
        bar.update(1)
        bar.set_postfix_str(f"{outcome.sequence} {outcome.status}", refresh=False)
    if outcome.status == "failed":
        tqdm.write(f"[{outcome.tracker}] {outcome.sequence}: {outcome.message}", file=sys.stderr)


def run_ope(
    dataset: Dataset,
    trackers: list[TrackerFactory],
    out_dir: str | os.PathLike,
    *,
    workers: int = 1,
    max_frames: int | None = None,
    progress: bool = True,
) -> list[Outcome]:
    """Run every tracker over every sequence of ``dataset``, writing got10k-layout results to ``out_dir``.

    Sequences with complete results are skipped, so an interrupted run resumes where it stopped; results are
    reused only when they were made by the same tracker (:mod:`edgetrack.evaluation.identity`).
    ``workers=0`` runs in this process; ``workers=N`` uses N spawned processes per tracker.
    ``max_frames`` cuts every sequence to its first frames. A tracker that cannot be built is reported
    (as ``failed`` outcomes) and the others still run.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise InputError(f"workers must be 0 (this process) or a positive number of processes, got {workers!r}")
    labels = [f.label for f in trackers]
    if len(set(labels)) != len(labels):
        raise InputError(f"tracker names must be unique, got {labels}; name them with name=path")
    out_dir = str(out_dir)
    seqs = [s.head(max_frames) for s in dataset]
    outcomes: list[Outcome] = []
    for factory in trackers:
        problem = check_factory(factory)
        if problem is None:
            check_identity(out_dir, factory.label, tracker_identity(factory))
        todo = [s for s in seqs if not is_complete(out_dir, factory.label, s.name, len(s))]
        outcomes += [Outcome(factory.label, s.name, "skipped") for s in seqs if s not in todo]
        if not todo:
            continue
        if problem is not None:
            tqdm.write(f"[{factory.label}] cannot be built, skipped: {problem}", file=sys.stderr)
            outcomes += [Outcome(factory.label, s.name, "failed", problem) for s in todo]
            continue
        with tqdm(total=len(todo), desc=factory.label, unit="seq", disable=not progress) as bar:
            if workers == 0:
                outcomes += _run_in_process(factory, todo, out_dir, bar)
            else:
                outcomes += _run_in_pool(factory, todo, out_dir, workers, bar)
    return outcomes
