"""Scoring a candidate architecture for the search: a short distillation run, then tracking on reward sequences.

The reward sequences are *training-split* sequences held out from the proxy runs (so the search never sees the
split's validation sequences, which stay for the final report). Each candidate trains from the teacher for
``ProxyConfig.steps`` steps with the TSKD objective, is tracked with the torch backend on the reward sequences
(success AUC), and its search graph is timed on ONNX Runtime with one thread. Per-candidate results are cached
in ``<out>/candidates/<hash>/result.json``, so a killed search repeats at most one candidate.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..data import open_dataset
from ..data.fileio import atomic_write_text
from .nas import Evaluation

# one sub-sequence per video, none from the same video as a proxy-training sequence
REWARD_SEQUENCES = ("otb_Crossing", "otb_Woman", "uav123_10fps_bike1", "uav123_10fps_building4",
                    "uav123_10fps_truck2")


@dataclass(frozen=True)
class ProxyConfig:
    steps: int = 150
    data: str = ""  # folder holding the reward sequences
    reward_sequences: tuple[str, ...] = REWARD_SEQUENCES
    max_frames: int = 400  # per reward sequence
    latency_runs: int = 60


def arch_key(arch: dict) -> str:
    return hashlib.sha1(json.dumps(arch, sort_keys=True).encode()).hexdigest()[:12]


def proxy_train_config(base, arch_file: Path, out: Path, proxy: ProxyConfig):
    """The base TrainConfig narrowed to one dull student of ``arch_file`` trained ``proxy.steps`` steps."""
    excluded = tuple(dict.fromkeys((*base.data.exclude, *proxy.reward_sequences)))
    return dataclasses.replace(
        base, out=str(out), students=("dull",), dull_arch=str(arch_file), steps=proxy.steps,
        checkpoint_every=proxy.steps, log_every=max(1, proxy.steps // 5), resume=True,
        objective=dataclasses.replace(base.objective, mode="tskd"),
        optim=dataclasses.replace(base.optim, warmup_steps=min(base.optim.warmup_steps, proxy.steps // 5)),
        data=dataclasses.replace(base.data, exclude=excluded))


def proxy_auc(checkpoint: Path, data: str, names: tuple[str, ...], max_frames: int) -> float:
    """Mean success AUC of the checkpoint (torch backend, one thread) over the named sequences."""
    from ..evaluation.runner import track_sequences
    from ..runtime import Tracker

    ds = open_dataset(data)
    seqs = tuple(ds[name].head(max_frames) for name in names)
    return track_sequences(lambda: Tracker(checkpoint, backend="torch", threads=1), seqs).auc


def make_evaluator(base, proxy: ProxyConfig, out: str | Path):
    """``evaluate(arch) -> Evaluation`` for :func:`edgetrack.training.nas.search`."""
    from . import distributed as ddp
    from .loader import make_loader_factory
    from .nas import onnx_latency_ms
    from .trainer import Trainer

    root = Path(out) / "candidates"

    def evaluate(arch: dict) -> Evaluation:
        folder = root / arch_key(arch)
        result = folder / "result.json"
        if result.exists():
            rec = json.loads(result.read_text())
            return Evaluation(rec["accuracy"], rec["latency_ms"])
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "arch.json", json.dumps({"arch": arch}, indent=1))
        cfg = proxy_train_config(base, folder / "arch.json", folder, proxy)
        trainer = Trainer(cfg, make_loader_factory(cfg, ddp.DistInfo()))
        trainer.run()
        ckpt = folder / "student_dull.safetensors"
        accuracy = proxy_auc(ckpt, proxy.data, proxy.reward_sequences, proxy.max_frames)
        latency = onnx_latency_ms(trainer.students["dull"].spec, runs=proxy.latency_runs)
        atomic_write_text(result, json.dumps({"accuracy": accuracy, "latency_ms": latency}))
        return Evaluation(accuracy, latency)

    return evaluate
