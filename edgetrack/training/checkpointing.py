"""Resumable training state: written atomically every N steps, so a kill loses at most N steps."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.fileio import atomic_path

STATE_FILE = "state.pt"


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_state(out_dir: Path, state: dict[str, Any]) -> Path:
    """``torch.save`` to a temp file in ``out_dir`` and rename over ``state.pt``."""
    with atomic_path(out_dir / STATE_FILE) as tmp:
        torch.save(state, tmp)
    return out_dir / STATE_FILE


def load_state(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / STATE_FILE
    if not path.exists():
        return None
    # our own file: optimizer states and RNG states need full unpickling
    return torch.load(path, map_location="cpu", weights_only=False)
