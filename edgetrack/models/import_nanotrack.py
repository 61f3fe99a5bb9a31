"""Convert the authors' NanoTrack V1/V2/V3 PyTorch checkpoints into edgetrack checkpoints.

The authors' tracker never runs its ``neck`` (their model builder feeds backbone features straight to the
head, and V1's neck does not even fit its backbone's 48 channels), so those weights are dropped. Head keys are
renamed onto edgetrack's canonical (V3-style) names; V1's single shared correlation attention is copied into
both branches, which computes exactly the same outputs.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..errors import ModelError, ModelNotFoundError
from ..presets import nanotrack_spec
from .io import check_output_shapes, model_from_arrays, save_checkpoint

_RENAMES = [
    (r"^ban_head\.cls_pw_tower\.", "ban_head.cls_tower."),
    (r"^ban_head\.bbox_pw_tower\.", "ban_head.bbox_tower."),
    (r"^ban_head\.cls_pred\.", "ban_head.cls_logits."),
]


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise ModelNotFoundError(f"NanoTrack checkpoint not found: {path}")
    if not path.is_file():
        raise ModelError(f"{path} is not a regular file: a NanoTrack checkpoint is a .pth file")
    if path.stat().st_size == 0:
        raise ModelError(f"cannot read {path} as a PyTorch checkpoint: the file is empty (0 bytes)")
    try:
        # The authors' files store the epoch as a numpy scalar: allow exactly that, nothing executable.
        import numpy as np

        allowed = [(np._core.multiarray.scalar, "numpy.core.multiarray.scalar"), np.dtype,
                   *{type(np.dtype(t)) for t in "fdilq"}]
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise ModelError(f"cannot read {path} as a PyTorch checkpoint: {exc or type(exc).__name__}") from exc
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state:
        raise ModelError(f"{path} holds no state_dict")
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def detect_version(state: dict[str, torch.Tensor]) -> int:
    """Tell V1/V2/V3 apart from their head keys."""
    if any(k.startswith("ban_head.corr_dw_") for k in state):
        return 3
    if any(k.startswith("ban_head.corr_pw_cls.") for k in state):
        return 2
    if any(k.startswith("ban_head.corr_pw.") for k in state):
        return 1
    raise ModelError("state_dict does not look like NanoTrack V1, V2 or V3 (no ban_head correlation keys)")


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the authors' keys to edgetrack's, dropping the unused neck."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("neck."):
            continue
        if key.startswith("ban_head.corr_pw.CA_layer."):
            rest = key.removeprefix("ban_head.corr_pw.")
            out[f"ban_head.corr_pw_cls.{rest}"] = value
            out[f"ban_head.corr_pw_reg.{rest}"] = value.clone()
            continue
        for pattern, repl in _RENAMES:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def import_nanotrack(pth: str | os.PathLike, version: int | None = None):
    """Build an edgetrack NanoTrack network from the authors' ``.pth`` (version detected when not given)."""
    state = _read_state_dict(Path(pth))
    detected = detect_version(state)
    if version is not None and version != detected:
        raise ModelError(f"{pth} looks like NanoTrack V{detected}, not V{version}")
    spec = nanotrack_spec(detected)
    arrays = {k: v.numpy() for k, v in convert_state_dict(state).items()}
    model = model_from_arrays(spec, arrays, str(pth))
    check_output_shapes(model)
    return model


def import_nanotrack_to_file(pth: str | os.PathLike, out: str | os.PathLike, version: int | None = None) -> Path:
    model = import_nanotrack(pth, version)
    return save_checkpoint(model, out, {"source": f"NanoTrack authors' checkpoint {Path(pth).name}"})
