"""Training logs: a CSV that survives resumes (rows after the resumed step are dropped) and TensorBoard."""
from __future__ import annotations

import csv
from pathlib import Path

from ..data.fileio import atomic_write_text


class TrainLog:
    def __init__(self, out_dir: Path, resume_step: int = 0, tensorboard: bool = True) -> None:
        self.path = out_dir / "log.csv"
        self.rows: list[dict[str, float]] = []
        if resume_step and self.path.exists():
            with open(self.path, newline="") as fh:
                self.rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]
            self.rows = [r for r in self.rows if r.get("step", 0) <= resume_step]
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=resume_step or None)
            except ImportError:
                self.writer = None

    def add(self, step: int, values: dict[str, float]) -> None:
        row = {"step": float(step), **{k: float(v) for k, v in values.items()}}
        self.rows.append(row)
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def flush(self) -> None:
        keys: list[str] = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        lines = [",".join(keys)] + [",".join("" if k not in r else f"{r[k]:.6g}" for k in keys) for r in self.rows]
        atomic_write_text(self.path, "\n".join(lines) + "\n")
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()
