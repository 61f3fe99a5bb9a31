"""The TSsKD ablation (the shape of the paper's Tables 4/5) at one equal training budget.

    python benchmarks/ablation.py --steps 1500              # trains the missing runs, then evaluates all
    python benchmarks/ablation.py --steps 1500 --eval-only  # tables from the runs already trained

Every variant starts from the same teacher slices, seed, data and schedule as
``edgetrack/training/configs/default_student.yaml`` and differs only in its objective:

- ``nokd``      ground truth only (``edgetrack-train supervised``)
- ``tskd``      teacher soft + adaptive hard + STR, students trained side by side without sharing
- ``tsskd``     the full objective with student-student knowledge sharing
- ``tsskd-nostr``  TSsKD without the Siamese target response term
- ``tsskd-noah``   TSsKD without the adaptive hard term (λ = 0)
- ``tsskd-nas``    TSsKD with the dull architecture found by ``edgetrack-train search --out runs/nas`` (opt-in)

Runs are trained one after another (each resumes after a kill) into ``runs/ablation/<variant>``; the
evaluation is ``benchmarks/students_table.py`` over all of them on the held-out split, with the teacher
and OpenCV's TrackerNano measured in the same run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "edgetrack" / "training" / "configs" / "default_student.yaml"
VARIANTS: dict[str, list[str]] = {
    "nokd": ["objective.mode=nokd"],
    "tskd": ["objective.mode=tskd"],
    "tsskd": ["objective.mode=tsskd"],
    "tsskd-nostr": ["objective.mode=tsskd", "objective.use_str=false"],
    "tsskd-noah": ["objective.mode=tsskd", "objective.use_ah=false"],
    # the dull student's architecture from `edgetrack-train search --out runs/nas` (not in the default list)
    "tsskd-nas": ["objective.mode=tsskd", f"dull_arch={REPO / 'runs' / 'nas' / 'best.json'}"],
}
DEFAULT = ("nokd", "tskd", "tsskd", "tsskd-nostr", "tsskd-noah")


def train_command(variant: str, steps: int, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "edgetrack.training.cli", "distill", "--config", str(CONFIG),
           "--out", str(out / variant), "--steps", str(steps)]
    for item in VARIANTS[variant]:
        cmd += ["--set", item]
    return cmd


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--variants", default=",".join(DEFAULT), help=f"comma-separated, of {list(VARIANTS)}")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "ablation")
    p.add_argument("--teacher", type=Path, default=REPO / "runs" / "teachers" / "nanotrack_v2.safetensors")
    p.add_argument("--eval-only", action="store_true")
    args = p.parse_args(argv)
    names = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if not args.eval_only:
        for name in names:
            print(f"== training {name} ({args.steps} steps)", flush=True)
            subprocess.run(train_command(name, args.steps, args.out), cwd=REPO, check=True)
    runs = ",".join(f"{name}={args.out / name}" for name in names if (args.out / name / "state.pt").exists())
    table = [sys.executable, str(REPO / "benchmarks" / "students_table.py"), "--teacher", str(args.teacher),
             "--runs", runs, "--out", str(args.out / "table")]
    return subprocess.run(table, cwd=REPO).returncode


if __name__ == "__main__":
    sys.exit(main())
