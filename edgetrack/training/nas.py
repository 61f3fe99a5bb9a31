"""Reinforcement-learned search for the dull student's architecture (REINFORCE over a categorical policy).

As in TSsKD, a controller samples architectures from :class:`~edgetrack.training.search_space.SearchSpace`;
each is scored by a reward that trades accuracy for cost, and the policy gradient raises the probability of
choices that beat the running-mean baseline. Here the cost is *measured latency* on the target device (ONNX
Runtime, one thread) rather than parameter count, and accuracy comes from a short distillation run supplied by
the caller, so the search itself is independent of how candidates are trained.

Results are appended to ``history.jsonl`` atomically per candidate; a killed search resumes from it.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.fileio import atomic_write_text
from .search_space import SearchSpace


@dataclass(frozen=True)
class NASConfig:
    episodes: int = 24
    lr: float = 0.2
    baseline_decay: float = 0.8
    latency_target_ms: float = 0.8
    latency_weight: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class Evaluation:
    accuracy: float  # higher is better (e.g. minus the validation distillation loss, or a proxy AUC)
    latency_ms: float


def reward(ev: Evaluation, cfg: NASConfig) -> float:
    """Accuracy minus a penalty that grows with the latency's excess over the target (log scale)."""
    excess = max(0.0, math.log(ev.latency_ms / cfg.latency_target_ms))
    return ev.accuracy - cfg.latency_weight * excess


class Controller:
    """Independent categorical distributions, one per decision."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.logits = [np.zeros(len(opts)) for opts in space.decisions]
        self.rng = np.random.default_rng(seed)

    def probs(self) -> list[np.ndarray]:
        out = []
        for logit in self.logits:
            e = np.exp(logit - logit.max())
            out.append(e / e.sum())
        return out

    def sample(self) -> tuple[int, ...]:
        return tuple(int(self.rng.choice(len(p), p=p)) for p in self.probs())

    def best(self) -> tuple[int, ...]:
        return tuple(int(np.argmax(p)) for p in self.probs())

    def update(self, choice: tuple[int, ...], advantage: float, lr: float) -> None:
        """Gradient ascent on ``advantage * log p(choice)``: d log softmax / d logits = onehot - p."""
        for logit, p, c in zip(self.logits, self.probs(), choice):
            grad = -p
            grad[c] += 1.0
            logit += lr * advantage * grad


def _smooth(baseline: float | None, value: float, decay: float) -> float:
    return value if baseline is None else decay * baseline + (1 - decay) * value


def search(evaluate: Callable[[dict], Evaluation], out_dir: str | Path, cfg: NASConfig | None = None,
           space: SearchSpace | None = None, progress: bool = True) -> dict:
    """Run the search; ``evaluate(arch) -> Evaluation``. Returns the best architecture seen and its record."""
    from tqdm import tqdm

    cfg = cfg or NASConfig()
    space = space or SearchSpace()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    history_path = out / "history.jsonl"
    history = [json.loads(line) for line in history_path.read_text().splitlines()] if history_path.exists() else []
    ctrl = Controller(space, cfg.seed)
    baseline = None
    for rec in history:  # replay: same policy state as before the kill
        ctrl.sample()
        baseline = _smooth(baseline, rec["reward"], cfg.baseline_decay)
        ctrl.update(tuple(rec["choice"]), rec["reward"] - baseline, cfg.lr)
    for _ in tqdm(range(len(history), cfg.episodes), desc="architecture search", disable=not progress,
                  initial=len(history), total=cfg.episodes):
        choice = ctrl.sample()
        arch = space.decode(choice)
        ev = evaluate(arch)
        r = reward(ev, cfg)
        baseline = _smooth(baseline, r, cfg.baseline_decay)
        ctrl.update(choice, r - baseline, cfg.lr)
        history.append(dict(choice=list(choice), arch=arch, accuracy=ev.accuracy, latency_ms=ev.latency_ms,
                            reward=r))
        atomic_write_text(history_path, "".join(json.dumps(h) + "\n" for h in history))
    best = max(history, key=lambda h: h["reward"])
    summary = dict(best=best, policy_best=list(ctrl.best()), policy_best_arch=space.decode(ctrl.best()),
                   episodes=len(history))
    atomic_write_text(out / "best.json", json.dumps(summary, indent=2))
    return summary


def onnx_latency_ms(spec, runs: int = 100, warmup: int = 10) -> float:
    """Median single-thread ONNX Runtime latency (ms) of a spec's search graph with random weights, on sessions
    built by the runtime backend (:func:`edgetrack.runtime.backends.ort.create_session`), so a shape is timed
    with the settings it will track with."""
    import tempfile
    import time

    import torch

    from ..export.onnx_export import export_onnx
    from ..models import build_model
    from ..runtime.backends.ort import create_session

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        export_onnx(build_model(spec).eval(), tmp, simplify=False)
        tmpl = create_session(f"{tmp}/template.onnx", threads=1)
        sess = create_session(f"{tmp}/search.onnx", threads=1)
        rng = np.random.default_rng(0)
        z = rng.uniform(0, 255, (1, 3, spec.exemplar_size, spec.exemplar_size)).astype(np.float32)
        x = rng.uniform(0, 255, (1, 3, spec.instance_size, spec.instance_size)).astype(np.float32)
        feeds = {"x": x, **dict(zip([i.name for i in sess.get_inputs()][1:], tmpl.run(None, {"z": z})))}
        for _ in range(warmup):
            sess.run(None, feeds)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            sess.run(None, feeds)
            times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))
