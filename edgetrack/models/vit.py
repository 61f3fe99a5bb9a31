"""The one-stream ViT family (OSTrack-style, as OpenCV zoo's VitTrack): conv patch embedding, template and
search tokens processed jointly by transformer blocks, and a centre head (score, size and offset maps).

Two graphs, like every family: ``template(z) -> (zt,)`` embeds the template crop into tokens with their position
embedding (cached by the runtime at ``init``); ``search(x, zt) -> (score, size, offset)`` embeds the search crop,
runs the blocks over the template and search tokens together and decodes the search tokens. The last block
computes only the search tokens (the head never reads the template ones): the same outputs for less work.
With the spec's template memory on (``memory_tokens`` > 0) the search graph also gives ``attn``, each template
token's attention from the search tokens, and takes any number of template tokens (the runtime's condensed
memory, :mod:`edgetrack.runtime.template_memory`).

Sizes come from ``spec.arch``: ``width``, ``depth``, ``heads``, ``mlp_ratio``, ``embed_channels`` (the patch
embedding's conv widths, stride 2 each: the last is ``width``) and ``head_channels`` (each centre-head branch's
3x3 convs). Outputs: ``score`` (B,1,S,S) and ``size`` (B,2,S,S) are probabilities (sigmoid, clipped to
[1e-4, 1-1e-4]); ``size`` is (w, h) and ``offset`` (B,2,S,S) the sub-cell (x, y) of the centre, both as
fractions of the search crop and of a cell.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..spec import TrackerSpec
from .base import SiameseNet

CLIP = 1e-4


class PatchEmbed(nn.Module):
    """3x3 stride-2 convs with hard-swish between them (none after the last), flattened to (B, N, C) tokens."""

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for i, cout in enumerate(channels):
            layers.append(nn.Conv2d(cin, cout, 3, stride=2, padding=1))
            if i < len(channels) - 1:
                layers.append(nn.Hardswish())
            cin = cout
        self.proj = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention; ``queries`` limits the output to the last ``queries`` tokens. ``search`` > 0
    also returns the attention each of the first tokens (all but the last ``search``) receives, averaged over
    the heads and the last ``search`` queries: (B, N - search)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (width // heads) ** -0.5
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, queries: int = 0, search: int = 0):
        b, _, c = x.shape
        qkv = self.qkv(x).reshape(b, -1, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if queries:
            q = q[:, :, -queries:]
        attn = torch.softmax((q * self.scale) @ k.transpose(-2, -1), dim=-1)
        out = self.proj((attn @ v).transpose(1, 2).reshape(b, -1, c))
        if not search:
            return out
        return out, attn[:, :, -search:, :-search].mean(dim=(1, 2))


class Block(nn.Module):
    """Pre-norm transformer block: attention and a GELU MLP, each with a residual (``search``: see
    :class:`Attention`)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm1 = nn.LayerNorm(width, eps=1e-5)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, queries: int = 0, search: int = 0):
        res = x[:, -queries:] if queries else x
        attended = self.attn(self.norm1(x), queries, search)
        mass = None
        if search:
            attended, mass = attended
        x = res + attended
        x = x + self.mlp(self.norm2(x))
        return (x, mass) if search else x


def _branch(width: int, channels: list[int], out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = width
    for cout in channels:
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
        cin = cout
    layers.append(nn.Conv2d(cin, out, 1))
    return nn.Sequential(*layers)


class CentreHead(nn.Module):
    """Three conv branches over the search feature map: score (1), size (2) and offset (2) channels."""

    def __init__(self, width: int, channels: list[int]) -> None:
        super().__init__()
        self.score = _branch(width, channels, 1)
        self.size = _branch(width, channels, 2)
        self.offset = _branch(width, channels, 2)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        score = torch.sigmoid(self.score(feat)).clamp(CLIP, 1 - CLIP)
        size = torch.sigmoid(self.size(feat)).clamp(CLIP, 1 - CLIP)
        return score, size, self.offset(feat)


class ViTTrackNet(SiameseNet):
    """Template graph: ``z -> (zt (B, Nz, width),)``; search graph: ``(x, zt) -> (score, size, offset)``, plus
    ``attn`` (B, Nz) when the spec turns the template memory on (``memory_tokens`` > 0): the attention each
    template token receives from the search tokens, averaged over heads, search queries and blocks, which the
    runtime's memory condenses by (:mod:`edgetrack.runtime.template_memory`). The search graph takes any number
    of template tokens (the memory's), each carrying its own position embedding from the template graph."""

    template_names = ("zt",)
    output_names: tuple[str, ...] = ("score", "size", "offset")

    def __init__(self, spec: TrackerSpec) -> None:
        super().__init__(spec)
        self.attention_output = spec.memory_tokens > 0
        if self.attention_output:
            self.output_names = (*ViTTrackNet.output_names, "attn")
        arch: dict[str, Any] = spec.arch
        width, channels = int(arch["width"]), [int(c) for c in arch["embed_channels"]]
        if channels[-1] != width or 2 ** len(channels) != spec.stride:
            raise ValueError(f"embed_channels {channels} must end in width {width} and give stride {spec.stride}")
        self.patch_embed = PatchEmbed(channels)
        self.pos_embed_z = nn.Parameter(torch.zeros(1, spec.template_feat_size ** 2, width))
        self.pos_embed_x = nn.Parameter(torch.zeros(1, spec.score_size ** 2, width))
        self.blocks = nn.ModuleList(Block(width, int(arch["heads"]), float(arch["mlp_ratio"]))
                                    for _ in range(int(arch["depth"])))
        self.norm = nn.LayerNorm(width, eps=1e-5)
        self.box_head = CentreHead(width, [int(c) for c in arch["head_channels"]])
        nn.init.trunc_normal_(self.pos_embed_z, std=0.02)
        nn.init.trunc_normal_(self.pos_embed_x, std=0.02)

    def template(self, z: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.patch_embed(z) + self.pos_embed_z,)

    def tokens(self, x: torch.Tensor, zt: torch.Tensor, attention: bool = False):
        """Every block's output (template and search tokens; the last block's search tokens only), normed last;
        with ``attention`` also each template token's attention from the search tokens, mean over the blocks."""
        t = torch.cat([zt, self.patch_embed(x) + self.pos_embed_x], dim=1)
        n_x = self.spec.score_size ** 2
        outs, masses = [], []
        for i, block in enumerate(self.blocks):
            t = block(t, n_x if i == len(self.blocks) - 1 else 0, n_x if attention else 0)
            if attention:
                t, mass = t
                masses.append(mass)
            outs.append(t)
        outs[-1] = self.norm(outs[-1])
        return (outs, torch.stack(masses).mean(dim=0)) if attention else outs

    def head(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Search tokens (B, S*S, C) -> the centre head's maps."""
        s = self.spec.score_size
        feat = tokens[:, -s * s:].transpose(1, 2).reshape(tokens.shape[0], -1, s, s)
        return self.box_head(feat)

    def search(self, x: torch.Tensor, *zts: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not self.attention_output:
            return self.head(self.tokens(x, zts[0])[-1])
        blocks, mass = self.tokens(x, zts[0], attention=True)
        return (*self.head(blocks[-1]), mass)

    def forward_train(self, z: torch.Tensor, x: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], dict]:
        """Head outputs, the template tokens and every block's tokens (for layer-by-layer distillation)."""
        zt = self.template(z)[0]
        blocks = self.tokens(x, zt)
        return self.head(blocks[-1]), {"zf": zt, "blocks": blocks}
