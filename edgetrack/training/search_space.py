"""The search space of the dull student's architecture (numbers only, no torch).

A candidate is a tuple of choices, one per decision; :func:`decode` turns it into a NanoTrack-style ``arch``
dict with a dense stride-4 stem. The reinforcement-learned search (:mod:`edgetrack.training.nas`) samples
candidates from this space.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DULL_DEFAULT_ARCH: dict[str, Any] = dict(
    stem=["conv", 4, 16, 4],
    blocks=[["conv", 3, 32, 2], ["conv", 3, 48, 2], ["conv", 3, 48, 1]],
    corr_adapt=True, corr_post=False, dw_corr=False, tower_style="dense",
    cls_tower=[[3, 32]], reg_tower=[[3, 32]],
)


@dataclass(frozen=True)
class SearchSpace:
    """Decisions and their options; every candidate keeps output stride 16 and an 8x8 template map."""

    stem_channels: tuple[int, ...] = (12, 16, 24)
    block2_channels: tuple[int, ...] = (24, 32, 48)
    block3_channels: tuple[int, ...] = (32, 48, 64)
    extra_block: tuple[int, ...] = (0, 1)
    tower_channels: tuple[int, ...] = (24, 32, 48)
    tower_depth: tuple[int, ...] = (1, 2)
    tower_kernel: tuple[int, ...] = (3, 5)

    @property
    def decisions(self) -> tuple[tuple[int, ...], ...]:
        return (self.stem_channels, self.block2_channels, self.block3_channels, self.extra_block,
                self.tower_channels, self.tower_depth, self.tower_kernel)

    def decode(self, choice: tuple[int, ...]) -> dict[str, Any]:
        """Indices into :attr:`decisions` -> an ``arch`` dict."""
        if len(choice) != len(self.decisions):
            raise ValueError(f"a candidate has {len(self.decisions)} choices, got {len(choice)}")
        stem, c2, c3, extra, tc, td, tk = (opts[i] for opts, i in zip(self.decisions, choice))
        blocks = [["conv", 3, c2, 2], ["conv", 3, c3, 2]]
        if extra:
            blocks.append(["conv", 3, c3, 1])
        tower = [[tk, tc]] * td
        return dict(stem=["conv", 4, stem, 4], blocks=blocks, corr_adapt=True, corr_post=False, dw_corr=False,
                    tower_style="dense", cls_tower=tower, reg_tower=tower)
