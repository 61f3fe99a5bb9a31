"""Save and load torch networks as edgetrack checkpoints (safetensors + embedded spec)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_arrays, save_arrays
from ..errors import ModelError, SpecError
from ..spec import TrackerSpec
from .base import SiameseNet
from .registry import build_model

_COUNTER = "num_batches_tracked"  # BatchNorm's step counter: not a weight, never stored


def save_checkpoint(model: SiameseNet, path: str | os.PathLike, extra_meta: dict[str, str] | None = None) -> Path:
    """Write ``model``'s weights and spec to ``path`` (``.safetensors``), atomically."""
    arrays = {k: v.detach().cpu().contiguous().numpy() for k, v in model.state_dict().items()
              if not k.endswith(_COUNTER)}
    return save_arrays(path, model.spec, arrays, extra_meta)


def check_output_shapes(model: SiameseNet) -> None:
    """Run zeros through both graphs and check the sizes the spec promises (score map, template features)."""
    spec = model.spec
    was_training = model.training
    model.eval()
    with torch.no_grad():
        z = torch.zeros(1, 3, spec.exemplar_size, spec.exemplar_size)
        x = torch.zeros(1, 3, spec.instance_size, spec.instance_size)
        zfs = model.template(z)
        outs = model.search(x, *zfs)
    model.train(was_training)
    size = tuple(outs[0].shape[-2:])
    expect = (spec.score_size, spec.score_size)
    if spec.family == "siamfc":
        return
    if size != expect:
        raise SpecError(f"spec says score_size {spec.score_size} but the network gives {size[0]}x{size[1]}")


def model_from_arrays(spec: TrackerSpec, arrays: dict[str, np.ndarray], source: str = "<memory>") -> SiameseNet:
    model = build_model(spec)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith(_COUNTER)}
    arrays = {k: v for k, v in arrays.items() if not k.endswith(_COUNTER)}
    missing = sorted(set(state) - set(arrays))
    unexpected = sorted(set(arrays) - set(state))
    shape_bad = [k for k in state if k in arrays and tuple(state[k].shape) != tuple(arrays[k].shape)]
    if missing or unexpected or shape_bad:
        raise ModelError(
            f"{source}: the weights do not fit the spec's {spec.family} architecture "
            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}, "
            f"wrong shape {shape_bad[:5]})")
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}, strict=False)
    return model.eval()


def load_checkpoint(path: str | os.PathLike) -> SiameseNet:
    """Load an edgetrack checkpoint into a network in eval mode; raises ModelError/SpecError when it does not fit."""
    spec, arrays = load_arrays(path)
    return model_from_arrays(spec, arrays, str(path))


def with_search_size(model: SiameseNet, instance_size: int | None) -> SiameseNet:
    """The same network and weights for search crops of ``instance_size`` pixels
    (:meth:`~edgetrack.spec.TrackerSpec.with_search_size`: a smaller crop is faster, and sees less around the
    target); the score map is checked against the new spec. ``None`` or the model's own size: ``model`` itself."""
    if instance_size is None or instance_size == model.spec.instance_size:
        return model
    spec = model.spec.with_search_size(instance_size)
    arrays = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    resized = model_from_arrays(spec, arrays, f"{spec.name or spec.family} at search size {instance_size}")
    check_output_shapes(resized)
    return resized
