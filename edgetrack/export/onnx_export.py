"""ONNX export: a template graph (z -> template tensors) and a search graph (x, template tensors -> outputs).

Both graphs carry the tracker spec in their ``metadata_props`` so ``Tracker(folder)`` needs nothing else. The
batch axis is dynamic (several targets per call) wherever the network's correlation allows it.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..data.fileio import atomic_path
from ..errors import ModelError
from ..models.base import SiameseNet
from ..spec import METADATA_KEY, TrackerSpec

MAX_IR_VERSION = 10  # onnxruntime 1.17+ reads IR 10; newer onnx writers may stamp higher versions


class _TemplateGraph(nn.Module):
    def __init__(self, net: SiameseNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor):
        return self.net.template(z)


class _SearchGraph(nn.Module):
    def __init__(self, net: SiameseNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, *zfs: torch.Tensor):
        return self.net.search(x, *zfs)


@dataclass(frozen=True)
class OnnxExport:
    folder: Path
    template: Path
    search: Path
    max_rel_diff: dict[str, float]


def _finish(path: Path, net: SiameseNet, graph: str, simplify: bool) -> None:
    """Simplify, stamp the spec into the metadata, check, and rewrite the file atomically."""
    import onnx

    model = onnx.load(str(path))
    if simplify:
        try:
            import onnxslim

            model = onnxslim.slim(model)
        except Exception as exc:  # a failed simplification must not lose the export
            warnings.warn(f"onnxslim could not simplify the {graph} graph ({exc}); keeping it as exported",
                          stacklevel=2)
    write_graph(model, path, net.spec, graph)


def write_graph(model, path: Path, spec: TrackerSpec, graph: str, precision: str = "fp32") -> None:
    """Stamp the spec into an ONNX model's metadata, check it, and write it atomically to ``path``."""
    import onnx

    del model.metadata_props[:]
    meta = {METADATA_KEY: spec.to_json(), "edgetrack_graph": graph, "edgetrack_version": __version__,
            "edgetrack_precision": precision}
    onnx.helper.set_model_props(model, meta)
    model.ir_version = min(model.ir_version, MAX_IR_VERSION)
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def _export_graph(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
                  dynamic_batch: bool, opset: int, token_axes: dict[str, dict[int, str]] | None = None) -> None:
    axes = {name: {0: "batch"} for name in inputs + outputs} if dynamic_batch else {}
    for name, more in (token_axes or {}).items():  # e.g. the vit memory's template-token axis
        axes[name] = {**axes.get(name, {}), **more}
    module.eval()  # the exporter restores the wrapper's mode afterwards, recursively: keep it eval
    with warnings.catch_warnings():
        # Only the exporter's notices about its own API (deprecations) are hidden; tracer warnings (a Python
        # value frozen into the graph, a shape taken as constant) stay visible: they flag real export problems.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.onnx")
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes or None, opset_version=opset, dynamo=False, do_constant_folding=True)


def token_axes(net: SiameseNet) -> dict[str, dict[int, str]]:
    """Search-graph axes besides the batch that take any size: the template-token axis of a vit network with
    the template memory on (its input ``zt`` and its ``attn`` output), so the memory's tokens fit."""
    if "attn" not in net.output_names:
        return {}
    return {"zt": {1: "tokens"}, "attn": {1: "tokens"}}


def _parity(folder: Path, net: SiameseNet, z: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
    """Per output: max |ONNX Runtime - torch| relative to the output's scale (max |torch|, at least 1)."""
    from ..runtime.backends.ort import create_session

    t_sess = create_session(folder / "template.onnx", threads=1)
    s_sess = create_session(folder / "search.onnx", threads=1)
    with torch.no_grad():
        zfs = net.template(z)
        ref = net.search(x, *zfs)
    zfs_ort = t_sess.run(None, {"z": z.numpy()})
    feeds = {"x": x.numpy(), **{n: a for n, a in zip(net.template_names, zfs_ort)}}
    outs = s_sess.run(None, feeds)
    def rel(a: np.ndarray, b: torch.Tensor) -> float:
        ref_arr = b.numpy()
        return float(np.abs(a - ref_arr).max() / max(1.0, float(np.abs(ref_arr).max())))

    diffs = {n: rel(a, b) for n, a, b in zip(net.template_names, zfs_ort, zfs)}
    diffs.update({n: rel(a, b) for n, a, b in zip(net.output_names, outs, ref)})
    return diffs


def export_onnx(net: SiameseNet, out: str | os.PathLike, opset: int = 17, simplify: bool = True,
                dynamic_batch: bool = True, batch: int = 1) -> OnnxExport:
    """Write ``out/template.onnx`` and ``out/search.onnx`` and check them against torch."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    net = net.eval().cpu()
    spec = net.spec
    gen = torch.Generator().manual_seed(0)
    z = torch.rand(batch, 3, spec.exemplar_size, spec.exemplar_size, generator=gen) * 255
    x = torch.rand(batch, 3, spec.instance_size, spec.instance_size, generator=gen) * 255
    with torch.no_grad():
        zfs = net.template(z)
    names_t, names_o = list(net.template_names), list(net.output_names)
    try:
        _export_graph(_TemplateGraph(net), (z,), folder / "template.onnx", ["z"], names_t, dynamic_batch, opset)
        _export_graph(_SearchGraph(net), (x, *zfs), folder / "search.onnx", ["x", *names_t], names_o,
                      dynamic_batch, opset, token_axes(net))
    except Exception as exc:
        raise ModelError(f"ONNX export of the {spec.family} network failed: {exc}") from exc
    for graph in ("template", "search"):
        _finish(folder / f"{graph}.onnx", net, graph, simplify)
    diffs = _parity(folder, net, z, x)
    return OnnxExport(folder, folder / "template.onnx", folder / "search.onnx", diffs)
