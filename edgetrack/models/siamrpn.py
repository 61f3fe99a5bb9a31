"""SiamRPN with an AlexNet backbone and pysot's two RPN heads, plus loading of pysot checkpoints.

Outputs follow pysot exactly, for ``K`` anchors on an ``S x S`` grid:

* ``cls (B, 2K, S, S)``: channels ``[0:K]`` are background logits and ``[K:2K]`` foreground logits of the
  ``K`` anchors (pysot's ``view(2, -1)`` then softmax over the first axis);
* ``reg (B, 4K, S, S)``: ``[dx x K, dy x K, dw x K, dh x K]``.

Heads (``arch["head"]``):

* ``"dwxcorr"`` -- pysot's ``DepthwiseRPN``: per branch a 3x3 ``conv_kernel`` on the template,
  ``conv_search`` on the search features, depthwise correlation, then a 1x1 ``head``. ``template()`` returns
  the two ``conv_kernel`` outputs (``zf_cls``, ``zf_loc``), so the per-frame graph skips them.
* ``"upchannel"`` -- pysot's ``UPChannelRPN`` (the original SiamRPN, DaSiamRPN's released models): the
  template convs lift the features to ``2K`` / ``4K`` correlation kernels (``cls_kernel``, ``loc_kernel``,
  returned by ``template()``); the search convs and ``loc_adjust`` run per frame.

Module names match pysot (``backbone.features.N``, ``rpn_head.cls.conv_kernel.0``, ``rpn_head.template_cls_conv``
...), so ``model.load_state_dict(pysot_state_dict, strict=True)`` works; :func:`load_pysot_state_dict` also
reads ``.pth`` files, strips ``module.`` and renames DaSiamRPN's keys.
"""
from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ModelError, ModelNotFoundError, SpecError
from ..spec import TrackerSpec
from .alexnet import AlexNet, AlexNetConfig, check_spec_sizes, init_weights, spec_with_sizes, split_arch
from .base import SiameseNet
from .correlation import xcorr_depthwise, xcorr_full

HEADS = ("dwxcorr", "upchannel")
# pysot AlexNetLegacy (``BACKBONE.TYPE: alexnetlegacy``): BN after every conv, no groups.
_BACKBONE = AlexNetConfig(width=1.0, groups=1, last_bn=True, layout="features")
_HEAD = {"head": "dwxcorr", "hidden": None}
# DaSiamRPN (foolwood/DaSiamRPN code/net.py) module names -> pysot UPChannelRPN names.
_DASIAMRPN_RENAMES = (
    ("featureExtract.", "backbone.features."),
    ("conv_cls1.", "rpn_head.template_cls_conv."),
    ("conv_r1.", "rpn_head.template_loc_conv."),
    ("conv_cls2.", "rpn_head.search_cls_conv."),
    ("conv_r2.", "rpn_head.search_loc_conv."),
    ("regress_adjust.", "rpn_head.loc_adjust."),
)


def _conv_bn_relu(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class DepthwiseXCorr(nn.Module):
    """One branch of pysot's depthwise RPN: ``conv_kernel``, ``conv_search``, correlation, ``head``."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        self.conv_kernel = _conv_bn_relu(in_channels, hidden, 3)
        self.conv_search = _conv_bn_relu(in_channels, hidden, 3)
        self.head = nn.Sequential(
            nn.Conv2d(hidden, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, out_channels, 1),
        )

    def forward(self, kernel: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        """``kernel`` is ``conv_kernel(zf)`` (computed once per template)."""
        return self.head(xcorr_depthwise(self.conv_search(xf), kernel))


class DepthwiseRPN(nn.Module):
    """pysot's ``DepthwiseRPN``: ``cls`` and ``loc`` depthwise-correlation branches."""

    template_names = ("zf_cls", "zf_loc")

    def __init__(self, anchor_num: int, in_channels: int, hidden: int) -> None:
        super().__init__()
        self.cls = DepthwiseXCorr(in_channels, hidden, 2 * anchor_num)
        self.loc = DepthwiseXCorr(in_channels, hidden, 4 * anchor_num)

    def template(self, zf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls.conv_kernel(zf), self.loc.conv_kernel(zf)

    def search(self, xf: torch.Tensor, zf_cls: torch.Tensor, zf_loc: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.cls(zf_cls, xf), self.loc(zf_loc, xf)


class UPChannelRPN(nn.Module):
    """pysot's ``UPChannelRPN`` (original SiamRPN): template convs make ``2K*C`` / ``4K*C`` kernels."""

    template_names = ("cls_kernel", "loc_kernel")

    def __init__(self, anchor_num: int, in_channels: int) -> None:
        super().__init__()
        cls_out, loc_out = 2 * anchor_num, 4 * anchor_num
        self.template_cls_conv = nn.Conv2d(in_channels, in_channels * cls_out, 3)
        self.template_loc_conv = nn.Conv2d(in_channels, in_channels * loc_out, 3)
        self.search_cls_conv = nn.Conv2d(in_channels, in_channels, 3)
        self.search_loc_conv = nn.Conv2d(in_channels, in_channels, 3)
        self.loc_adjust = nn.Conv2d(loc_out, loc_out, 1)

    def template(self, zf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.template_cls_conv(zf), self.template_loc_conv(zf)

    def search(self, xf: torch.Tensor, cls_kernel: torch.Tensor,
               loc_kernel: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cls = xcorr_full(self.search_cls_conv(xf), cls_kernel)
        loc = self.loc_adjust(xcorr_full(self.search_loc_conv(xf), loc_kernel))
        return cls, loc


class SiamRPNNet(SiameseNet):
    """SiamRPN network built from a ``family="siamrpn"`` spec (see :func:`siamrpn_spec` for the arch keys).

    ``template_names`` depends on the head: ``("zf_cls", "zf_loc")`` or ``("cls_kernel", "loc_kernel")``.
    Template tensors may have batch 1 (one target, several search crops) or the search batch.
    """

    output_names = ("cls", "reg")

    def __init__(self, spec: TrackerSpec) -> None:
        super().__init__(spec)
        cfg, head = split_arch(dict(spec.arch), "siamrpn", _BACKBONE, _HEAD)
        if head["head"] not in HEADS:
            raise SpecError(f"siamrpn head must be one of {HEADS}, got {head['head']!r}")
        anchors = spec.num_anchors
        self.backbone = AlexNet(cfg)
        channels = self.backbone.out_channels
        if head["head"] == "dwxcorr":
            hidden = channels if head["hidden"] is None else int(head["hidden"])
            self.rpn_head: nn.Module = DepthwiseRPN(anchors, channels, hidden)
        else:
            if head["hidden"] is not None:
                raise SpecError("siamrpn arch 'hidden' applies to the dwxcorr head only")
            self.rpn_head = UPChannelRPN(anchors, channels)
        init_weights(self.rpn_head)
        self.template_names = self.rpn_head.template_names
        check_spec_sizes(spec)

    def template(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.rpn_head.template(self.backbone(z))

    def search(self, x: torch.Tensor, *zfs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(zfs) != len(self.template_names):
            raise TypeError(f"SiamRPNNet.search takes {self.template_names}, got {len(zfs)} tensors")
        return self.rpn_head.search(self.backbone(x), *zfs)


def siamrpn_spec(width: float = 1.0, head: str = "dwxcorr", **overrides: Any) -> TrackerSpec:
    """A SiamRPN spec with the tracking constants of the reference model for ``head``.

    * ``"dwxcorr"``: pysot ``experiments/siamrpn_alex_dwxcorr/config.yaml`` (instance 287, score 21,
      penalty_k 0.16, window_influence 0.40, lr 0.30);
    * ``"upchannel"``: DaSiamRPN's AlexNet ``SiamRPNotb`` (code/net.py: instance 271, score 19,
      penalty_k 0.22, window_influence 0.40, lr 0.30).

    The backbone is scaled by ``width``. ``overrides`` replace spec fields (``arch`` is merged into the
    default arch); changing the crop sizes recomputes ``template_feat_size``/``score_size`` unless given.
    """
    if head not in HEADS:
        raise SpecError(f"siamrpn head must be one of {HEADS}, got {head!r}")
    arch = {"width": width, "groups": _BACKBONE.groups, "last_bn": _BACKBONE.last_bn, "layout": _BACKBONE.layout,
            "bn_eps": _BACKBONE.bn_eps, "bn_momentum": _BACKBONE.bn_momentum, "head": head}
    arch.update(overrides.pop("arch", {}))
    track = ({"instance_size": 287, "penalty_k": 0.16, "window_influence": 0.40, "lr": 0.30} if head == "dwxcorr"
             else {"instance_size": 271, "penalty_k": 0.22, "window_influence": 0.40, "lr": 0.30})
    suffix = "" if width == 1.0 else f"-w{width:g}"
    values: dict[str, Any] = dict(
        family="siamrpn", name=f"siamrpn-alexnet-{head}{suffix}", arch=arch,
        # pysot ANCHOR (stride 8, ratios, scales) and TRACK (exemplar 127, context 0.5); both references agree.
        exemplar_size=127, context_amount=0.5, stride=8,
        anchor_ratios=(0.33, 0.5, 1.0, 2.0, 3.0), anchor_scales=(8.0,),
        # pysot and DaSiamRPN feed raw 0..255 BGR pixels (OpenCV images), no normalisation.
        mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), channel_order="BGR", score_activation="softmax",
        **track,
    )
    values.update(overrides)
    return spec_with_sizes(values)


# ------------------------------------------------------------------------------------------ checkpoints
def read_checkpoint(path_or_dict: str | PathLike | Mapping, *, trusted: bool = False) -> dict[str, torch.Tensor]:
    """The state dict inside a torch checkpoint: a plain state dict or ``{"state_dict": ...}``.

    ``module.`` prefixes (``DataParallel``) are stripped. Files are read with ``weights_only=True`` unless
    ``trusted`` (needed only for files that pickle more than tensors and plain containers).
    """
    obj: Any = path_or_dict
    if not isinstance(path_or_dict, Mapping):
        path = Path(path_or_dict)
        if not path.is_file():
            raise ModelNotFoundError(f"checkpoint {str(path)!r} does not exist")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=not trusted)
        except Exception as exc:  # torch raises several unrelated types for corrupt or unsafe files
            hint = "" if trusted else " (if you trust the file, pass trusted=True to unpickle it fully)"
            raise ModelError(f"cannot read checkpoint {str(path)!r}: {exc}{hint}") from exc
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise ModelError("checkpoint holds no state dict (expected a mapping of tensors or {'state_dict': ...})")
    bad = sorted(str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))
    if bad:
        raise ModelError(f"checkpoint state dict has non-tensor entries: {bad[:8]}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def _rename_dasiamrpn(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map DaSiamRPN's module names to pysot's if the state dict uses them; otherwise return it as is."""
    if not any(k.startswith("featureExtract.") for k in state):
        return state
    out = {}
    for key, value in state.items():
        for old, new in _DASIAMRPN_RENAMES:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def _mismatch_report(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str:
    """Describe missing, unexpected and mis-shaped keys; empty if the state dict fits the model."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shaped = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in state if k in expected and state[k].shape != expected[k].shape]
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped", shaped)):
        if items:
            more = f" ... and {len(items) - 8} more" if len(items) > 8 else ""
            parts.append(f"{len(items)} {label}: {items[:8]}{more}")
    return "; ".join(parts)


def load_reference_state_dict(model: nn.Module, path_or_dict: str | PathLike | Mapping, *,
                              source: str = "pysot", trusted: bool = False) -> Any:
    """Load a reference implementation's checkpoint into ``model`` strictly; return ``model``.

    Raises :class:`ModelError` naming every missing, unexpected or mis-shaped key (after ``module.``
    stripping). BatchNorm ``num_batches_tracked`` counters absent from old checkpoints are tolerated.
    """
    state = read_checkpoint(path_or_dict, trusted=trusted)
    if source == "pysot":
        state = _rename_dasiamrpn(state)
    report = _mismatch_report(model, state)
    if report:
        spec = getattr(model, "spec", None)
        name = f"{type(model).__name__}" + (f" (spec {spec.name!r}, arch {spec.arch})" if spec else "")
        raise ModelError(f"{source} checkpoint does not fit {name}: {report}. Check the spec's width, head "
                         f"and layout (pysot AlexNetLegacy uses 'features', pysot AlexNet 'layers').")
    full = dict(state)
    for key, value in model.state_dict().items():
        full.setdefault(key, value)  # only num_batches_tracked can be absent here
    model.load_state_dict(full, strict=True)
    return model


def load_pysot_state_dict(model: SiamRPNNet, path_or_dict: str | PathLike | Mapping, *,
                          trusted: bool = False) -> SiamRPNNet:
    """Load a pysot (or DaSiamRPN) SiamRPN checkpoint into ``model`` strictly; return ``model``.

    Accepts a path to a ``.pth`` file or an already loaded object: a plain state dict or pysot's training
    snapshot ``{"state_dict": ..., ...}``; ``module.`` prefixes are stripped and DaSiamRPN's names
    (``featureExtract``, ``conv_cls1`` ...) mapped to pysot's. Raises :class:`ModelError` naming
    missing/unexpected/mis-shaped keys, :class:`ModelNotFoundError` for a missing file.
    """
    return load_reference_state_dict(model, path_or_dict, source="pysot", trusted=trusted)
