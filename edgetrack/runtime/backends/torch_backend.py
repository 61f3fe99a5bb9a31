"""PyTorch backend: runs an edgetrack checkpoint directly (needs ``edgetrack[train]``)."""
from __future__ import annotations

import numpy as np

from ...errors import BackendUnavailableError, InputError, missing_extra
from ..model_files import ModelFiles


def _torch_device(torch, device: str):
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` as a torch device that is there; never a silent fallback."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device {device!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:N'") from exc
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (dev.index or 0) >= count:
            raise BackendUnavailableError(f"device {device!r}: torch sees {count} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise BackendUnavailableError(f"device {device!r}: torch's MPS backend is not available here")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"device {device!r} is not supported by the torch backend; use 'cpu' or 'cuda:N'")
    return dev


class TorchBackend:
    name = "torch"

    def __init__(self, files: ModelFiles, threads: int = 1, device: str = "cpu") -> None:
        try:
            import torch
        except ImportError as exc:
            raise missing_extra("torch", "train", "the torch backend") from exc
        from ...models.io import load_checkpoint

        self._torch = torch
        if threads > 0:
            torch.set_num_threads(threads)
        self.device = _torch_device(torch, device)
        self.model = load_checkpoint(files.root).to(self.device).eval()

    def _run(self, fn, *arrays: np.ndarray) -> list[np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            outs = fn(*(torch.from_numpy(a).to(self.device) for a in arrays))
        return [o.float().cpu().numpy() for o in outs]

    def run_template(self, z: np.ndarray) -> list[np.ndarray]:
        return self._run(self.model.template, z)

    def run_search(self, x: np.ndarray, zfs: list[np.ndarray]) -> list[np.ndarray]:
        return self._run(self.model.search, x, *zfs)
