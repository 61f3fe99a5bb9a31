"""``edgetrack-train``: distil students from a teacher (TSsKD), train the NOKD baseline, search the dull
student's architecture. Configs are YAML files plus ``--set key.sub=value`` overrides."""
from __future__ import annotations

import argparse
import json
import sys

from ..cli.common import run_guarded
from ..errors import InputError, missing_extra


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="YAML config (keys of TrainConfig)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set optim.lr=0.002 (repeatable)")
    p.add_argument("--teacher", default=None, help="teacher edgetrack checkpoint (.safetensors)")
    p.add_argument("--data", default=None, help="comma-separated sequence folders (any layout the readers know)")
    p.add_argument("--videos", default=None, help="comma-separated unlabeled videos or frame folders")
    p.add_argument("--synthetic", type=int, default=None, help="number of generated sequences to add")
    p.add_argument("--out", default=None, help="run folder (checkpoints, logs)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--no-resume", action="store_true", help="start over even if OUT holds a run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgetrack-train", description=(
        "Distil students from a teacher (TSsKD, or cut from the teacher and distilled in stages), train the NOKD "
        "baseline, choose a pruned shape by measured latency, search the dull student's architecture. Configs "
        "are YAML files plus --set key.sub=value overrides."))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = sub.add_parser("distill", help="TSsKD: teacher + students trained together")
    _common(d)
    d.add_argument("--students", default=None, help="comma-separated: intelligent,dull")
    d.add_argument("--mode", choices=["tskd", "tsskd"], default=None)
    s = sub.add_parser("supervised", help="the NOKD baseline: students on ground truth only")
    _common(s)
    s.add_argument("--students", default=None)
    r = sub.add_parser("prune", help="choose a student cut from the teacher by measured one-thread latency")
    _common(r)
    r.add_argument("--latency-target", type=float, default=0.8, help="search-graph ms (ONNX Runtime, 1 thread)")
    r.add_argument("--batches", type=int, default=8, help="batches of real crops (half for statistics)")
    a = sub.add_parser("search", help="reinforcement-learned search of the dull student's architecture")
    _common(a)
    a.add_argument("--episodes", type=int, default=16, help="candidates to sample (default 16)")
    a.add_argument("--proxy-steps", type=int, default=150, help="distillation steps per candidate")
    a.add_argument("--reward-data", default=None,
                   help="folder with the reward sequences (default: the first --data folder)")
    a.add_argument("--latency-target", type=float, default=0.6, help="search-graph ms (ONNX Runtime, 1 thread)")
    a.add_argument("--latency-weight", type=float, default=0.5)
    a.add_argument("--seed", type=int, default=0)
    return parser


def _overrides(args: argparse.Namespace) -> list[str]:
    out = list(args.overrides)
    for flag, key in (("teacher", "teacher"), ("data", "data.data"), ("videos", "data.videos"),
                      ("synthetic", "data.synthetic"), ("out", "out"), ("steps", "steps"),
                      ("students", "students")):
        value = getattr(args, flag, None)
        if value is not None:
            out.append(f"{key}={value}")
    if args.command == "supervised":
        out.append("objective.mode=nokd")
    elif getattr(args, "mode", None):
        out.append(f"objective.mode={args.mode}")
    if args.no_resume:
        out.append("resume=false")
    return out


def run_search(args: argparse.Namespace) -> int:
    """Sample architectures, score each by a short distillation + tracking on training-split reward sequences."""
    from pathlib import Path

    from .config import load_config
    from .nas import NASConfig, search
    from .nas_proxy import ProxyConfig, make_evaluator
    from .trainer import TrainConfig

    base = load_config(TrainConfig, args.config, _overrides(args))
    reward_data = args.reward_data or (base.data.data[0] if base.data.data else "")
    if not reward_data:
        raise InputError("the search needs labelled sequences for its reward: give --reward-data or --data")
    out = Path(args.out or base.out)
    proxy = ProxyConfig(steps=args.proxy_steps, data=reward_data)
    nas = NASConfig(episodes=args.episodes, latency_target_ms=args.latency_target,
                    latency_weight=args.latency_weight, seed=args.seed)
    summary = search(make_evaluator(base, proxy, out), out, nas)
    print(json.dumps(summary, indent=1))
    print(f"train the chosen student with: edgetrack-train distill --config ... --set dull_arch={out / 'best.json'}")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    """Cut every candidate shape from the teacher, time it, measure its distance to the teacher; pick one."""
    from pathlib import Path

    from ..models.io import load_checkpoint
    from . import distributed as ddp
    from .config import load_config
    from .loader import make_loader_factory
    from .prune_search import run_choice
    from .trainer import TrainConfig, crop_batches

    cfg = load_config(TrainConfig, args.config, _overrides(args))
    teacher = load_checkpoint(cfg.teacher).eval()
    crops = crop_batches(make_loader_factory(cfg, ddp.DistInfo()), teacher.spec, args.batches)
    out = Path(args.out or cfg.out)
    result = run_choice(teacher, crops, args.latency_target, out)
    print(json.dumps({k: result[k] for k in ("target_ms", "teacher_ms", "chosen")}, indent=1))
    if result["chosen"] is None:
        raise InputError(f"no candidate runs within {args.latency_target} ms; see {out / 'prune_choice.json'}")
    print("train it with: edgetrack-train distill ... " + " ".join(f"--set {o}" for o in result["overrides"]))
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise missing_extra("torch", "train", "edgetrack-train") from exc
    if args.command == "search":
        return run_search(args)
    if args.command == "prune":
        return run_prune(args)
    from . import distributed as ddp
    from .config import load_config, to_dict
    from .loader import make_loader_factory
    from .trainer import TrainConfig, Trainer

    cfg = load_config(TrainConfig, args.config, _overrides(args))
    info = ddp.setup()
    try:
        trainer = Trainer(cfg, make_loader_factory(cfg, info), info)
        if info.is_main:
            from ..data.fileio import atomic_write_text

            atomic_write_text(trainer.out / "config.json", json.dumps(to_dict(cfg), indent=2))
        result = trainer.run()
    finally:
        ddp.teardown(info)
    if info.is_main:
        print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in result.items()}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: run(args), "interrupted: run the same command again to resume")


if __name__ == "__main__":
    sys.exit(main())
