"""The dull student by reinforcement learning (TSsKD section 3.2, after N2N's layer-shrinkage stage).

The state is the teacher's sequence of shrinkable layers (every inverted-residual block's expanded channels, then
every layer of the classification and regression towers); an action is one shrink ratio per layer from
``{0.1, 0.2, ..., 1.0}`` (no layer is removed). An LSTM runs over the layer sequence (each step sees the layer's
description and the previous action) and emits that layer's ratio distribution. REINFORCE with a moving-average
baseline: per policy step ``N_a`` candidates are sampled, each is cut from the teacher and scored (the caller's
``evaluate``; :mod:`edgetrack.training.n2n_eval`), and the gradient of ``mean_k (R_k - b) log pi(a_k)`` is
followed; the reward only arrives at the end of a sequence and ``gamma = 1``, so every action of a candidate
gets its ``R``.

Resumable: the policy, its optimizer and the baseline are saved atomically after every policy step
(``policy.pt``), every step's candidates and rewards are appended to ``history.jsonl``, and each candidate's
result is cached by the evaluator; a killed search repeats at most the candidates of one step. The best candidate
scored so far is written to ``student_spec.json`` after every step.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.fileio import atomic_write_text

RATIOS = tuple(round(0.1 * k, 1) for k in range(1, 11))
KINDS = ("block", "cls", "reg")


@dataclass(frozen=True)
class N2NConfig:
    steps: int = 10          # policy steps
    candidates: int = 3      # N_a students sampled per step, rewards averaged
    lr: float = 0.01         # Adam on the policy
    baseline_decay: float = 0.8
    hidden: int = 32         # LSTM state size
    seed: int = 0
    resume: bool = True      # False: a fresh policy and history (candidate results stay cached: same cut, same
                             # evaluation settings, same result)


def teacher_layers(arch: dict[str, Any]) -> list[dict[str, Any]]:
    """The shrinkable layers of a NanoTrack teacher, in network order: expanding blocks, then each tower."""
    layers = []
    inp = arch["stem"] if isinstance(arch["stem"], int) else arch["stem"][2]
    for i, row in enumerate(arch["blocks"]):
        if row[0] == "conv":
            inp = row[2]
            continue
        k, hidden, out, _, _, stride = row
        if hidden != inp:
            layers.append(dict(kind="block", index=i, channels=hidden, kernel=k, stride=stride))
        inp = out
    for kind, key in (("cls", "cls_tower"), ("reg", "reg_tower")):
        for j, (k, ch) in enumerate(arch[key]):
            layers.append(dict(kind=kind, index=j, channels=ch, kernel=k, stride=1))
    return layers


def layer_features(layers: list[dict[str, Any]]) -> torch.Tensor:
    """``(L, 7)``: kind one-hot, channels (relative to the widest), kernel / 5, stride / 2, position."""
    widest = max(layer["channels"] for layer in layers)
    rows = [[float(layer["kind"] == k) for k in KINDS]
            + [layer["channels"] / widest, layer["kernel"] / 5.0, layer["stride"] / 2.0, i / max(1, len(layers) - 1)]
            for i, layer in enumerate(layers)]
    return torch.tensor(rows, dtype=torch.float32)


def cut_from_actions(arch: dict[str, Any], layers: list[dict[str, Any]], actions: list[int]) -> dict[str, Any]:
    """PruneConfig keys of a candidate: per-layer ratios (blocks without expansion keep 1.0)."""
    if len(actions) != len(layers):
        raise ValueError(f"one action per layer: {len(layers)} layers, {len(actions)} actions")
    hidden = [1.0] * len(arch["blocks"])
    towers: dict[str, list[float]] = {"cls": [], "reg": []}
    for layer, a in zip(layers, actions):
        if layer["kind"] == "block":
            hidden[layer["index"]] = RATIOS[a]
        else:
            towers[layer["kind"]].append(RATIOS[a])
    return dict(hidden_ratios=hidden, cls_ratios=towers["cls"], reg_ratios=towers["reg"], tower_depth=0,
                drop_blocks=[])


class Policy(nn.Module):
    """LSTM over the layer sequence; input = layer features + previous action (one-hot), output = ratio logits."""

    def __init__(self, n_features: int, hidden: int = 32) -> None:
        super().__init__()
        self.lstm = nn.LSTMCell(n_features + len(RATIOS), hidden)
        self.head = nn.Linear(hidden, len(RATIOS))
        self.hidden = hidden

    def _run(self, feats: torch.Tensor, choose: Callable[[int, torch.Tensor], int]) -> tuple[list[int], torch.Tensor]:
        h = c = torch.zeros(1, self.hidden)
        prev = torch.zeros(1, len(RATIOS))
        actions, logp = [], torch.zeros(())
        for t in range(feats.shape[0]):
            h, c = self.lstm(torch.cat([feats[t:t + 1], prev], dim=1), (h, c))
            log_probs = torch.log_softmax(self.head(h)[0], dim=0)
            a = choose(t, log_probs)
            actions.append(a)
            logp = logp + log_probs[a]
            prev = torch.zeros(1, len(RATIOS))
            prev[0, a] = 1.0
        return actions, logp

    def sample(self, feats: torch.Tensor, generator: torch.Generator) -> list[int]:
        with torch.no_grad():
            return self._run(feats, lambda t, lp: int(torch.multinomial(lp.exp(), 1, generator=generator)))[0]

    def log_prob(self, feats: torch.Tensor, actions: list[int]) -> torch.Tensor:
        return self._run(feats, lambda t, lp: actions[t])[1]

    def greedy(self, feats: torch.Tensor) -> list[int]:
        with torch.no_grad():
            return self._run(feats, lambda t, lp: int(lp.argmax()))[0]


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _read_history(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def search(evaluate: Callable[[dict], dict], out_dir: str | Path, cfg: N2NConfig | None = None,
           arch: dict[str, Any] | None = None, progress: bool = True) -> dict:
    """Run (or resume) the policy search. ``evaluate(cut) -> {"reward", ...}``; ``arch`` is the teacher's
    (default: ``evaluate.teacher_arch``). Returns ``{"best", "steps", "policy_greedy"}``."""
    from tqdm import tqdm

    cfg = cfg or N2NConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arch = arch if arch is not None else evaluate.teacher_arch
    layers = teacher_layers(arch)
    feats = layer_features(layers)
    torch.manual_seed(cfg.seed)
    policy = Policy(feats.shape[1], cfg.hidden)
    optim = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    state_path, history_path = out / "policy.pt", out / "history.jsonl"
    baseline = None
    if state_path.exists() and cfg.resume:
        state = torch.load(state_path, weights_only=False)
        policy.load_state_dict(state["policy"])
        optim.load_state_dict(state["optim"])
        start, baseline = int(state["step"]), state["baseline"]
    else:
        start = 0
    history = _read_history(history_path)[:start]
    for step in tqdm(range(start, cfg.steps), desc="policy steps", initial=start, total=cfg.steps,
                     disable=not progress):
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + step)
        samples = [policy.sample(feats, gen) for _ in range(cfg.candidates)]
        cuts = [cut_from_actions(arch, layers, a) for a in samples]
        results = [{"actions": a, "cut": c, **evaluate(c)} for a, c in zip(samples, cuts)]
        rewards = torch.tensor([r["reward"] for r in results], dtype=torch.float32)
        mean = float(rewards.mean())
        base = mean if baseline is None else baseline
        loss = -sum((r - base) * policy.log_prob(feats, a) for r, a in zip(rewards.tolist(), samples)) / len(samples)
        optim.zero_grad()
        loss.backward()
        optim.step()
        baseline = mean if baseline is None else cfg.baseline_decay * baseline + (1 - cfg.baseline_decay) * mean
        history.append({"step": step + 1, "mean_reward": mean, "baseline": baseline, "candidates": results})
        atomic_write_text(history_path, "".join(json.dumps(h) + "\n" for h in history))
        _save_atomic({"policy": policy.state_dict(), "optim": optim.state_dict(), "step": step + 1,
                      "baseline": baseline, "config": asdict(cfg)}, state_path)
        _write_best(out, history, layers)
    return {"best": _write_best(out, history, layers) if history else None, "steps": len(history),
            "policy_greedy": cut_from_actions(arch, layers, policy.greedy(feats))}


def _write_best(out: Path, history: list[dict], layers: list[dict]) -> dict:
    """``student_spec.json``: the best candidate scored so far (name ``dull``, its cut, reward and measures)."""
    best = max((c for h in history for c in h["candidates"]), key=lambda c: c["reward"])
    spec = {"name": "dull", "cut": best["cut"], "layers": layers,
            **{k: v for k, v in best.items() if k not in ("cut", "actions")}}
    atomic_write_text(out / "student_spec.json", json.dumps(spec, indent=1))
    return spec
