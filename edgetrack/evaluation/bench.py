"""The benchmark pipeline behind ``edgetrack bench`` and ``benchmarks/dev_table.py``.

Dataset (given, or a synthetic one generated under ``<out>/synthetic-data``) -> OPE runs into
``<out>/results/<tracker>/`` (resumable) -> ``<out>/report.json``, ``report.md`` and plots.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgetrack.data import open_dataset, write_dataset
from edgetrack.data.fileio import atomic_write_text
from edgetrack.data.sequence import Dataset
from edgetrack.errors import DataError

from .metrics import EvalOptions
from .report import build_report, write_report
from .runner import Outcome, run_ope
from .trackers import TrackerFactory


@dataclass(frozen=True)
class SyntheticSpec:
    """The synthetic set used when no dataset is given."""

    n_sequences: int = 6
    n_frames: int = 60
    size: tuple[int, int] = (320, 240)
    seed: int = 0


@dataclass(frozen=True)
class BenchConfig:
    """Everything one benchmark run needs; ``data=None`` means a generated synthetic set. ``split`` selects
    the rows of a video folder's ``MANIFEST.tsv`` (``"train"``, ``"val"``)."""

    out: Path
    trackers: tuple[TrackerFactory, ...]
    data: Path | None = None
    format: str = "auto"
    attributes: Path | None = None
    sequences: tuple[str, ...] | None = None
    max_sequences: int | None = None
    max_frames: int | None = None
    workers: int = 1
    exclude_absent: bool = False
    plots: bool = True
    progress: bool = True
    synthetic: SyntheticSpec = field(default_factory=SyntheticSpec)
    split: str | None = None


@dataclass(frozen=True)
class BenchResult:
    report: dict
    paths: dict[str, Path]
    outcomes: list[Outcome]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def load_dataset(config: BenchConfig) -> Dataset:
    """The dataset a run evaluates, after the sequence selection."""
    if config.data is None:
        s = config.synthetic
        root = write_dataset(Path(config.out) / "synthetic-data", s.n_sequences, s.seed, s.n_frames, s.size)
        ds = open_dataset(root, "dtb70")
    else:
        ds = open_dataset(config.data, config.format, attributes=config.attributes, split=config.split)
    if config.sequences is not None or config.max_sequences is not None:
        ds = ds.select(config.sequences, config.max_sequences)
    if len(ds) == 0:
        raise DataError("no sequences selected")
    return ds


def drop_unscorable(ds: Dataset, log: Callable[[str], None] | None = None) -> tuple[Dataset, dict[str, str]]:
    """``ds`` without the sequences that say they cannot be scored (``unscored_reason``: video files without
    full ground truth), and ``{name: reason}`` of those left out; one line per reason goes to stderr (or ``log``)."""
    skipped = {s.name: r for s in ds if (r := getattr(s, "unscored_reason", None))}
    log = log or (lambda msg: print(msg, file=sys.stderr))
    for reason in dict.fromkeys(skipped.values()):
        names = [n for n, r in skipped.items() if r == reason]
        log(f"not scored, {reason}: {len(names)} sequence(s): {', '.join(names)}")
    if len(skipped) == len(ds):
        raise DataError(f"none of the {len(ds)} sequences of {ds.root or ds.name} has ground truth for every "
                        "frame: nothing to score")
    if not skipped:
        return ds, {}
    return ds.select([n for n in ds.names if n not in skipped]), skipped


def _guard_results(results: Path, ds: Dataset) -> None:
    """Refuse to mix results of two different datasets in one output folder."""
    stamp = {"root": str(Path(ds.root).resolve()), "format": ds.format}
    path = results / "dataset.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != stamp:
            raise DataError(
                f"{results} holds results for {old['root']} ({old['format']}), not {stamp['root']}: "
                "choose another output folder"
            )
    else:
        atomic_write_text(path, json.dumps(stamp) + "\n")


def run_benchmark(config: BenchConfig) -> BenchResult:
    """Run (or resume) every tracker, then score, write the report and plots."""
    ds, skipped = drop_unscorable(load_dataset(config))
    results = Path(config.out) / "results"
    _guard_results(results, ds)
    outcomes = run_ope(ds, list(config.trackers), results, workers=config.workers,
                       max_frames=config.max_frames, progress=config.progress)
    errors: dict[str, dict[str, str]] = {}
    for o in outcomes:
        if o.status == "failed":
            errors.setdefault(o.tracker, {})[o.sequence] = o.message
    evaluated = ds.head(config.max_frames)
    names = [f.label for f in config.trackers]
    report = build_report(evaluated, results, names, EvalOptions(exclude_absent=config.exclude_absent), errors)
    report["max_frames"] = config.max_frames
    report["not_scored"] = skipped
    paths = write_report(report, config.out, plots=config.plots)
    return BenchResult(report, paths, outcomes)


def model_specs(text: str | None) -> list[tuple[str, str]]:
    """Parse ``name=path,name=path`` (a bare ``path`` is named after its file)."""
    out = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, path = item.partition("=")
        if not sep:
            name, path = Path(item).stem, item
        if not name or not path:
            raise DataError(f"cannot read model '{item}': use name=path")
        out.append((name.strip(), os.path.expanduser(path.strip())))
    return out
