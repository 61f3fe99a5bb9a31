"""PyTorch backend: runs an edgetrack checkpoint directly (needs ``edgetrack[train]``)."""
from __future__ import annotations

import numpy as np

from ...errors import missing_extra
from ..model_files import ModelFiles


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
        self.device = torch.device(device)
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
