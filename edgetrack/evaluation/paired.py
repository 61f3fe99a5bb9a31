"""Paired, per-sequence comparisons of trackers, and the rule that decides whether a candidate is adopted.

A mean over a few sequences moves by 0.04 when one sequence flips; decisions here are made sequence by sequence
against a reference run on the same frames (the teacher, the current model): the mean difference, the median
difference, how many sequences are more than ``margin`` below and above, per group (part, source, aerial vs
ground), and the spread over training seeds. numpy-free on purpose: plain floats in, plain dicts out.
"""
from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

_SEED = re.compile(r"^(?P<family>.+)-s(?P<seed>\d+)$")


@dataclass(frozen=True)
class Paired:
    """``candidate - reference`` over the sequences both scored."""

    n: int
    mean_diff: float | None
    median_diff: float | None
    below: int
    above: int

    def as_dict(self) -> dict:
        return {"n": self.n, "mean_diff": self.mean_diff, "median_diff": self.median_diff,
                "below": self.below, "above": self.above}


def paired(candidate: Mapping[str, float | None], reference: Mapping[str, float | None],
           margin: float = 0.05, names=None) -> Paired:
    """Per-sequence AUC differences of ``candidate`` against ``reference`` (``{sequence: auc}``), restricted to
    ``names`` when given; sequences either did not score are left out."""
    keys = [n for n in (names if names is not None else reference)
            if candidate.get(n) is not None and reference.get(n) is not None]
    diffs = [float(candidate[n]) - float(reference[n]) for n in keys]
    if not diffs:
        return Paired(0, None, None, 0, 0)
    return Paired(len(diffs), statistics.fmean(diffs), statistics.median(diffs),
                  sum(d < -margin for d in diffs), sum(d > margin for d in diffs))


def group_means(aucs: Mapping[str, float | None], labels: Mapping[str, str]) -> dict[str, float]:
    """Mean AUC of each label's sequences (got10k's overall AUC is the mean of the per-sequence AUCs)."""
    acc: dict[str, list[float]] = {}
    for name, label in labels.items():
        if aucs.get(name) is not None:
            acc.setdefault(label, []).append(float(aucs[name]))
    return {label: statistics.fmean(v) for label, v in acc.items()}


def seed_family(name: str) -> tuple[str, int] | None:
    """``("fast255", 2)`` for a tracker named ``fast255-s2`` (one training seed of a recipe), else None."""
    m = _SEED.match(name)
    return (m["family"], int(m["seed"])) if m else None


def seed_families(names) -> dict[str, list[str]]:
    """``{family: [member names]}`` for every recipe with two or more seeds among ``names``."""
    fams: dict[str, list[str]] = {}
    for name in names:
        fam = seed_family(name)
        if fam:
            fams.setdefault(fam[0], []).append(name)
    return {f: sorted(m) for f, m in fams.items() if len(m) >= 2}


@dataclass(frozen=True)
class AdoptionRule:
    """When a candidate recipe replaces the current model, judged on the whole held-out set, over its seeds.

    Fixed before the runs (docs/training.md): the mean over seeds of the mean AUC at least ``min_mean_gain``
    above the current model's; every seed's median paired difference to the current model at least
    ``min_median``; summed over seeds, no more sequences ``margin`` below the current model than above it; the
    aerial sequences' mean over seeds not below the current model's; at least ``min_seeds`` seeds.
    """

    min_seeds: int = 3
    min_mean_gain: float = 0.01
    min_median: float = 0.0
    margin: float = 0.05


def adopt(seeds: Mapping[str, Mapping[str, float | None]], current: Mapping[str, float | None],
          aerial: Mapping[str, bool], rule: AdoptionRule = AdoptionRule()) -> dict:
    """Apply ``rule`` to a recipe's seeds (``{seed name: {sequence: auc}}``) against the current model.

    Returns the figures and ``adopt`` (bool) with the ``reasons`` it failed, one line each."""
    names = [n for n in current if current[n] is not None]
    aerial_names = [n for n in names if aerial.get(n)]
    per_seed = {s: paired(a, current, rule.margin, names) for s, a in seeds.items()}
    mean_gain = statistics.fmean(p.mean_diff for p in per_seed.values()) if per_seed and all(
        p.mean_diff is not None for p in per_seed.values()) else None
    aerial_gain = statistics.fmean(paired(a, current, rule.margin, aerial_names).mean_diff or 0.0
                                   for a in seeds.values()) if seeds and aerial_names else None
    below = sum(p.below for p in per_seed.values())
    above = sum(p.above for p in per_seed.values())
    reasons = []
    if len(seeds) < rule.min_seeds:
        reasons.append(f"{len(seeds)} seed(s), the rule asks for {rule.min_seeds}")
    if mean_gain is None or mean_gain < rule.min_mean_gain:
        reasons.append(f"mean gain {_f(mean_gain)} < {rule.min_mean_gain:+.3f}")
    worst = min((p.median_diff for p in per_seed.values() if p.median_diff is not None), default=None)
    if worst is None or worst < rule.min_median:
        reasons.append(f"worst seed's median paired difference {_f(worst)} < {rule.min_median:+.3f}")
    if below > above:
        reasons.append(f"{below} sequence-seeds more than {rule.margin} below, {above} above")
    if aerial_gain is not None and aerial_gain < 0:
        reasons.append(f"aerial sequences {_f(aerial_gain)} against the current model")
    return {"seeds": {s: p.as_dict() for s, p in per_seed.items()}, "mean_gain": mean_gain,
            "aerial_gain": aerial_gain, "worst_seed_median": worst, "below": below, "above": above,
            "adopt": not reasons, "reasons": reasons}


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.3f}"
