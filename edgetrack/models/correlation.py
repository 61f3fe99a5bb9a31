"""Cross-correlation between search features and a template kernel, written for export.

Siamese trackers correlate the search feature map with a kernel computed from the template. The usual torch
formulation (pysot's ``xcorr_fast``/``xcorr_depthwise``) folds the batch into the channels and calls
``conv2d(groups=B*C)`` with the kernel as the *weight*. That graph exports badly: TensorRT before 8.5 cannot
take a Conv whose weight is a graph tensor, and the group count fixes the batch size in the exported graph.

The functions here compute the same numbers with slices, element-wise products, sums and one MatMul, so the
exported graph has no Conv with a dynamic weight and any batch size runs through it:

* :func:`xcorr_depthwise` -- channel-by-channel correlation by shift-and-add over the kernel positions;
* :func:`xcorr_full` -- every output channel correlates all input channels (SiamFC, SiamRPN's UP-channel
  head): one channel out is a depthwise correlation summed over channels; several channels out use im2col
  (stacked slices) and a batched MatMul.

The kernel batch may be 1 (one template searched in several crops, e.g. SiamFC's scales) or equal to the
search batch. :func:`xcorr_depthwise_reference` and :func:`xcorr_full_reference` are pysot's grouped-conv
formulation, kept as the numerical reference for tests.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F


def _static(size: int | torch.Tensor) -> int:
    """A channel or spatial size as a Python int.

    When tracing for export, sizes come as tensors; channel and spatial sizes are fixed for a network, so they
    become constants of the graph (Slice bounds, Reshape targets). The batch size is never read this way and
    stays dynamic.
    """
    if isinstance(size, torch.Tensor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return int(size)
    return int(size)


def _check(x: torch.Tensor, kernel: torch.Tensor) -> tuple[int, int]:
    """Validate shapes; return the output height and width."""
    if x.dim() != 4 or kernel.dim() != 4:
        raise ValueError(f"correlation needs 4-D tensors, got x {tuple(x.shape)} and kernel {tuple(kernel.shape)}")
    if not torch.jit.is_tracing() and kernel.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"kernel batch {kernel.shape[0]} must be 1 or the search batch {x.shape[0]}")
    out_h = _static(x.shape[2]) - _static(kernel.shape[2]) + 1
    out_w = _static(x.shape[3]) - _static(kernel.shape[3]) + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"kernel {tuple(kernel.shape[2:])} is larger than the search map {tuple(x.shape[2:])}")
    return out_h, out_w


def xcorr_depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise correlation: ``(B, C, H, W)`` with ``(B or 1, C, kh, kw)`` to ``(B, C, H-kh+1, W-kw+1)``.

    ``out[b, c, i, j] = sum_{u, v} x[b, c, i+u, j+v] * kernel[b, c, u, v]``, computed as a sum over the
    ``kh*kw`` kernel positions of a shifted slice of ``x`` times one kernel tap (Slice, Mul and Add in ONNX).
    """
    out_h, out_w = _check(x, kernel)
    if _static(kernel.shape[1]) != _static(x.shape[1]):
        raise ValueError(f"depthwise kernel has {kernel.shape[1]} channels, search has {x.shape[1]}")
    out = None
    for u in range(_static(kernel.shape[2])):
        for v in range(_static(kernel.shape[3])):
            term = x[:, :, u:u + out_h, v:v + out_w] * kernel[:, :, u:u + 1, v:v + 1]
            out = term if out is None else out + term
    return out


def xcorr_full(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Full correlation: ``(B, C, H, W)`` with ``(B or 1, O*C, kh, kw)`` to ``(B, O, H-kh+1, W-kw+1)``.

    The kernel layout is pysot's ``xcorr_fast``: channel ``o*C + c`` of the kernel is the filter of input
    channel ``c`` for output channel ``o``. With ``O == 1`` this is a depthwise correlation summed over
    channels; otherwise the shifted slices of ``x`` are stacked (im2col) and multiplied by the kernel
    reshaped to ``(B, O, C*kh*kw)`` in one batched MatMul.
    """
    out_h, out_w = _check(x, kernel)
    channels, kernel_channels = _static(x.shape[1]), _static(kernel.shape[1])
    if kernel_channels % channels:
        raise ValueError(f"full kernel has {kernel_channels} channels, not a multiple of the search's {channels}")
    n_out = kernel_channels // channels
    if n_out == 1:
        return xcorr_depthwise(x, kernel).sum(dim=1, keepdim=True)
    kh, kw = _static(kernel.shape[2]), _static(kernel.shape[3])
    taps = [x[:, :, u:u + out_h, v:v + out_w] for u in range(kh) for v in range(kw)]
    cols = torch.stack(taps, dim=2).reshape(-1, channels * kh * kw, out_h * out_w)  # (B, C*kh*kw, L)
    weight = kernel.reshape(-1, n_out, channels * kh * kw)  # (B or 1, O, C*kh*kw)
    return torch.matmul(weight, cols).reshape(-1, n_out, out_h, out_w)


def xcorr_depthwise_reference(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """pysot's grouped-conv depthwise correlation (reference for tests; the kernel batch must equal B)."""
    batch, channels = kernel.shape[0], kernel.shape[1]
    xs = x.reshape(1, batch * channels, x.shape[2], x.shape[3])
    ks = kernel.reshape(batch * channels, 1, kernel.shape[2], kernel.shape[3])
    out = F.conv2d(xs, ks, groups=batch * channels)
    return out.reshape(batch, channels, out.shape[2], out.shape[3])


def xcorr_full_reference(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """pysot's grouped-conv full correlation ``xcorr_fast`` (reference for tests; kernel batch must equal B)."""
    batch = kernel.shape[0]
    ks = kernel.reshape(-1, x.shape[1], kernel.shape[2], kernel.shape[3])
    xs = x.reshape(1, -1, x.shape[2], x.shape[3])
    out = F.conv2d(xs, ks, groups=batch)
    return out.reshape(batch, -1, out.shape[2], out.shape[3])
