"""Parameter and multiply-accumulate counts of a network's per-frame (search) graph, by forward hooks."""
from __future__ import annotations

import torch
from torch import nn

from .base import SiameseNet


def _conv_macs(module: nn.Conv2d, out: torch.Tensor) -> int:
    kh, kw = module.kernel_size
    return int(out.numel() // out.shape[0] * (module.in_channels // module.groups) * kh * kw)


def count_macs(net: SiameseNet) -> dict[str, float]:
    """MACs of ``template`` and of ``search`` (per frame, batch 1), counting Conv, Linear and MatMul."""
    spec = net.spec
    totals = {"n": 0}

    def hook(module, _inputs, output):
        if isinstance(module, nn.Conv2d):
            totals["n"] += _conv_macs(module, output)
        elif isinstance(module, nn.Linear):
            totals["n"] += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    real_matmul = torch.matmul

    def counting_matmul(a, b):
        out = real_matmul(a, b)
        totals["n"] += int(out.numel() // out.shape[0] * a.shape[-1])
        return out

    try:
        net.eval()
        with torch.no_grad():
            z = torch.zeros(1, 3, spec.exemplar_size, spec.exemplar_size)
            x = torch.zeros(1, 3, spec.instance_size, spec.instance_size)
            zfs = net.template(z)
            template_macs = totals["n"]
            torch.matmul = counting_matmul
            net.search(x, *zfs)
    finally:
        torch.matmul = real_matmul
        for h in handles:
            h.remove()
    params = sum(p.numel() for p in net.parameters())
    return {"params_m": params / 1e6, "template_gmacs": template_macs / 1e9,
            "search_gmacs": (totals["n"] - template_macs) / 1e9}
