"""Convert OpenCV zoo's VitTrack ONNX model into an edgetrack checkpoint of the ``vit`` family.

The zoo file is one graph (inputs ``template`` and ``search``, outputs ``output1`` score, ``output2`` size,
``output3`` offset) whose batch-norms are folded into the convs and whose linear weights carry exporter-made
names. The weights are found by the graph's structure, not by those names: the patch embedding is the chain of
convs from the template input, the transformer's linear layers are the weight MatMuls in graph order (qkv,
proj, fc1, fc2 per block), the attention's head size is read from the query scaling, and each centre-head
branch is walked back from its named 1x1 conv (``box_head.conv5_{ctr,size,offset}``). Sizes come from the
weights, so the same code reads narrower or shallower graphs of the family.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import ModelError, ModelNotFoundError, missing_extra
from .vit_spec import vit_spec

_BRANCHES = {"score": "ctr", "size": "size", "offset": "offset"}


class _Graph:
    """Initializers as arrays plus producer/consumer maps of an ONNX graph."""

    def __init__(self, path: Path) -> None:
        try:
            import onnx
            from onnx import numpy_helper
        except ImportError as exc:
            raise missing_extra("onnx", "export", "importing VitTrack") from exc
        if not path.exists():
            raise ModelNotFoundError(f"VitTrack ONNX file not found: {path}")
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # onnx raises several types for corrupt files
            raise ModelError(f"cannot read {path} as an ONNX model: {exc}") from exc
        self.path = path
        self.graph = model.graph
        self.inits = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        self.producer = {out: n for n in self.graph.node for out in n.output}
        self.consumers: dict[str, list] = defaultdict(list)
        for node in self.graph.node:
            for name in node.input:
                self.consumers[name].append(node)

    def fail(self, what: str) -> ModelError:
        return ModelError(f"{self.path} does not look like a VitTrack graph: {what}")

    def input_size(self, name: str) -> int:
        for inp in self.graph.input:
            if inp.name == name:
                return int(inp.type.tensor_type.shape.dim[-1].dim_value)
        raise self.fail(f"no input named {name!r}")

    def conv(self, node) -> tuple[np.ndarray, np.ndarray]:
        weight = self.inits.get(node.input[1])
        bias = self.inits.get(node.input[2]) if len(node.input) > 2 else None
        if weight is None:
            raise self.fail(f"conv {node.name or node.output[0]} has no constant weight")
        return weight, np.zeros(weight.shape[0], np.float32) if bias is None else bias


def _patch_embed(g: _Graph) -> list[tuple[np.ndarray, np.ndarray]]:
    """Convs from the template input through hard-swishes, up to the flattening."""
    convs, tensor = [], "template"
    while True:
        nxt = [n for n in g.consumers[tensor] if n.op_type in ("Conv", "HardSwish")]
        if not nxt:
            break
        if nxt[0].op_type == "Conv":
            convs.append(g.conv(nxt[0]))
        tensor = nxt[0].output[0]
    if not convs:
        raise g.fail("no patch-embedding convs after the 'template' input")
    return convs


def _branch(g: _Graph, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The convs of one centre-head branch, walked back from its named 1x1 conv."""
    weight_name = f"box_head.conv5_{name}.weight"
    last = next((n for n in g.graph.node if n.op_type == "Conv" and n.input[1] == weight_name), None)
    if last is None:
        raise g.fail(f"no conv using {weight_name}")
    convs = [g.conv(last)]
    node = g.producer.get(last.input[0])
    while node is not None and node.op_type in ("Relu", "Conv"):
        if node.op_type == "Conv":
            convs.insert(0, g.conv(node))
        node = g.producer.get(node.input[0])
    return convs


def _head_dim(g: _Graph) -> int:
    """The attention head size, from the constant the queries are scaled by (divided by sqrt(d) or times 1/sqrt(d))."""
    softmax = next((n for n in g.graph.node if n.op_type == "Softmax"), None)
    scores = g.producer.get(softmax.input[0]) if softmax is not None else None
    scaled = g.producer.get(scores.input[0]) if scores is not None else None
    const = next((g.inits[i] for i in (scaled.input if scaled is not None else []) if i in g.inits), None)
    if scaled is None or const is None or scaled.op_type not in ("Div", "Mul"):
        raise g.fail("cannot find the attention's query scaling")
    value = float(np.asarray(const).reshape(-1)[0])
    return int(round(value ** 2 if scaled.op_type == "Div" else value ** -2))


def _linears(g: _Graph, depth_hint: int) -> list[np.ndarray]:
    mats = [g.inits[n.input[1]] for n in g.graph.node
            if n.op_type == "MatMul" and n.input[1] in g.inits and g.inits[n.input[1]].ndim == 2]
    if not mats or len(mats) != 4 * depth_hint:
        raise g.fail(f"{len(mats)} weight MatMuls for {depth_hint} blocks (expected 4 per block)")
    return mats


def _arrays(g: _Graph) -> tuple[dict, dict[str, np.ndarray]]:
    """(arch, state dict arrays) read from the graph."""
    depth = len({k.split(".")[1] for k in g.inits if k.startswith("blocks.")})
    embed = _patch_embed(g)
    width = int(embed[-1][0].shape[0])
    out: dict[str, np.ndarray] = {"pos_embed_z": g.inits["pos_embed_z"], "pos_embed_x": g.inits["pos_embed_x"],
                                  "norm.weight": g.inits["norm.weight"], "norm.bias": g.inits["norm.bias"]}
    for i, (w, b) in enumerate(embed):
        out[f"patch_embed.proj.{2 * i}.weight"], out[f"patch_embed.proj.{2 * i}.bias"] = w, b
    mats = _linears(g, depth)
    for i in range(depth):
        p = f"blocks.{i}."
        for j, key in enumerate(("attn.qkv", "attn.proj", "mlp.0", "mlp.2")):
            out[p + key + ".weight"] = mats[4 * i + j].T
        for key, src in (("attn.qkv", "attn.qkv"), ("attn.proj", "attn.proj"), ("mlp.0", "mlp.fc1"),
                         ("mlp.2", "mlp.fc2"), ("norm1", "norm1"), ("norm2", "norm2")):
            out[p + key + ".bias"] = g.inits[p + src + ".bias"]
        for key in ("norm1", "norm2"):
            out[p + key + ".weight"] = g.inits[p + key + ".weight"]
    head_channels: list[int] = []
    for ours, theirs in _BRANCHES.items():
        convs = _branch(g, theirs)
        head_channels = [int(w.shape[0]) for w, _ in convs[:-1]]
        for i, (w, b) in enumerate(convs):
            out[f"box_head.{ours}.{2 * i}.weight"], out[f"box_head.{ours}.{2 * i}.bias"] = w, b
    arch = dict(width=width, depth=depth, heads=width // _head_dim(g),
                mlp_ratio=int(mats[2].shape[1]) // width, embed_channels=[int(w.shape[0]) for w, _ in embed],
                head_channels=head_channels)
    return arch, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def import_vittrack(path: str | os.PathLike):
    """Build an edgetrack ``vit`` network from OpenCV zoo's VitTrack ONNX file."""
    from .io import check_output_shapes, model_from_arrays

    g = _Graph(Path(path))
    try:
        arch, arrays = _arrays(g)
    except KeyError as exc:
        raise g.fail(f"missing initializer {exc}") from exc
    spec = vit_spec(arch, exemplar_size=g.input_size("template"), instance_size=g.input_size("search"))
    model = model_from_arrays(spec, arrays, str(path))
    check_output_shapes(model)
    return model


def onnx_outputs(path: str | os.PathLike, z: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
    """The zoo graph's (score, size, offset) on one normalised template/search crop pair (onnxruntime)."""
    from ..runtime.backends.ort import create_session

    sess = create_session(Path(path), threads=1)
    return sess.run(["output1", "output2", "output3"], {"template": z, "search": x})


def max_abs_diff(model, path: str | os.PathLike, seed: int = 0) -> float:
    """Largest |torch - zoo ONNX| over the three outputs on a random crop pair (pixels 0-255, normalised)."""
    import torch

    spec = model.spec
    rng = np.random.default_rng(seed)
    mean, std = np.asarray(spec.mean, np.float32)[:, None, None], np.asarray(spec.std, np.float32)[:, None, None]
    z = ((rng.uniform(0, 255, (1, 3, spec.exemplar_size, spec.exemplar_size)) - mean) / std).astype(np.float32)
    x = ((rng.uniform(0, 255, (1, 3, spec.instance_size, spec.instance_size)) - mean) / std).astype(np.float32)
    with torch.no_grad():
        ours = model(torch.from_numpy(z), torch.from_numpy(x))
    theirs = onnx_outputs(path, z, x)
    return max(float(np.abs(a.numpy() - b).max()) for a, b in zip(ours, theirs))


def import_vittrack_to_file(path: str | os.PathLike, out: str | os.PathLike) -> tuple[Path, float]:
    """Import, check against the zoo graph on a random crop pair, and write the checkpoint; returns its path and
    the largest output difference (a ModelError when above 1e-4)."""
    from .io import save_checkpoint

    model = import_vittrack(path)
    diff = max_abs_diff(model, path)
    if not diff <= 1e-4:
        raise ModelError(f"{path}: the imported network differs from the ONNX graph by {diff:.3g} (> 1e-4)")
    return save_checkpoint(model, out, {"source": f"OpenCV zoo VitTrack {Path(path).name}"}), diff
