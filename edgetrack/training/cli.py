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
    p.add_argument("--data", default=None, nargs="+",
                   help="sequence folders, space- or comma-separated (any layout the readers know)")
    p.add_argument("--videos", default=None, help="comma-separated unlabeled videos or frame folders")
    p.add_argument("--synthetic", type=int, default=None, help="number of generated sequences to add")
    p.add_argument("--out", default=None, help="run folder (checkpoints, logs)")
    p.add_argument("--steps", type=int, default=None, help="training steps (search: policy steps, default 10)")
    p.add_argument("--no-resume", action="store_true", help="start over even if OUT holds a run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgetrack-train", description=(
        "Distil students from a teacher (TSsKD, or cut from the teacher and distilled in stages), train the NOKD "
        "baseline, choose a pruned shape by measured latency, search the dull student's architecture. Configs "
        "are YAML files plus --set key.sub=value overrides."))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = sub.add_parser("distill", help="TSsKD: teacher + students trained together")
    _common(d)
    d.add_argument("--students", default=None, help="comma-separated names: intelligent, dull, fast, accurate or "
                                                    "any name given a shape under cuts.NAME")
    d.add_argument("--mode", choices=["tskd", "tsskd"], default=None)
    d.add_argument("--student-spec", default=None, metavar="FILE",
                   help="student_spec.json from edgetrack-train search: that student is cut from the teacher")
    s = sub.add_parser("supervised", help="the NOKD baseline: students on ground truth only")
    _common(s)
    s.add_argument("--students", default=None)
    r = sub.add_parser("prune", help="choose a student cut from the teacher by measured one-thread latency")
    _common(r)
    r.add_argument("--latency-target", type=float, default=0.8, help="search-graph ms (ONNX Runtime, 1 thread)")
    r.add_argument("--batches", type=int, default=8, help="batches of real crops (half for statistics)")
    sd = sub.add_parser("selfdistill", help="FARTrack-style self-distillation of a vit-family tracker into "
                                           "fewer and/or narrower blocks")
    _common(sd)
    sd.add_argument("--depth", type=int, default=None, help="student blocks (at most the teacher's)")
    sd.add_argument("--width", type=int, default=None, help="student token width (default: the teacher's)")
    a = sub.add_parser("search", help="N2N-style policy search of the dull student's per-layer widths (TSsKD 3.2)")
    _common(a)
    a.add_argument("--candidates", type=int, default=3, help="students sampled per policy step (N_a, default 3)")
    a.add_argument("--proxy-steps", type=int, default=60, help="distillation steps per candidate")
    a.add_argument("--reward", choices=["size", "latency"], default="size",
                   help="compression from parameter count (Eq. 6) or from measured one-thread latency")
    a.add_argument("--val-pairs", type=int, default=64, help="M: fixed validation pairs of the accuracy (Eq. 7)")
    a.add_argument("--seed", type=int, default=0)
    return parser


def _overrides(args: argparse.Namespace) -> list[str]:
    out = list(args.overrides)
    steps = "steps" if args.command != "search" else None  # the search's --steps counts policy steps
    for flag, key in (("teacher", "teacher"), ("data", "data.data"), ("videos", "data.videos"),
                      ("synthetic", "data.synthetic"), ("out", "out"), ("steps", steps),
                      ("students", "students"), ("student_spec", "student_spec")):
        value = getattr(args, flag, None)
        if key is None:
            continue
        if isinstance(value, list):
            value = ",".join(value)
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
    """Policy steps of the dull student's search; writes ``OUT/student_spec.json`` (the best candidate)."""
    from pathlib import Path

    from .config import load_config
    from .n2n import N2NConfig, search
    from .n2n_eval import CandidateEvaluator, EvalConfig
    from .trainer import TrainConfig

    base = load_config(TrainConfig, args.config, _overrides(args))
    out = Path(args.out or base.out)
    steps = args.steps if args.steps is not None else 10
    evaluator = CandidateEvaluator(base, out, EvalConfig(proxy_steps=args.proxy_steps, val_pairs=args.val_pairs,
                                                         reward=args.reward))
    summary = search(evaluator, out, N2NConfig(steps=steps, candidates=args.candidates, seed=args.seed,
                                                  resume=base.resume))
    print(json.dumps({k: summary[k] for k in ("best", "steps")}, indent=1))
    print(f"train it with: edgetrack-train distill --config ... --student-spec {out / 'student_spec.json'}")
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
    if args.command == "selfdistill":
        from .selfdistill import run_cli

        extra = [f"{k}={getattr(args, k)}" for k in ("depth", "width") if getattr(args, k) is not None]
        print(json.dumps(run_cli(args.config, _overrides(args) + extra), indent=1))
        return 0
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
