"""Float Particle Transformer (ParT, arXiv:2202.03772) reference, plain PyTorch (not for firmware).

Follows weaver-core's ParticleTransformer: particle embedding MLP (LayerNorm, Linear, GELU per layer),
pair embedding MLP over the 4 pairwise features (BatchNorm, Linear, GELU; 1x1 per pair) giving U with one channel
per head, ``num_layers`` particle attention blocks and ``num_cls_layers`` class-attention blocks, each block being
NormFormer style: LN -> MHA(+U) -> LN -> residual; LN -> fc1 -> GELU -> LN -> fc2 -> residual; then a final LN
and an MLP head. Presets:

- ``part``:      embed (128, 512, 128), pair embed (64, 64, 64), 8 heads, 8 + 2 layers, FFN 4x  [ParT paper]
- ``part_lite``: embed (64, 256, 64), pair embed (32, 32, 32, 8), dim 64, 8 heads, head FC (512, 316)
                 [CMS talk, Jan 2025, see shared REFERENCE.md]; its layer counts are not quoted there:
                 8 + 2 assumed (ParT's).
- ``matched(cfg)``: the same widths as an L1 ``ModelConfig`` *with* LayerNorm/GELU/class-token blocks: the float
                 variant used to measure what the L1 simplifications cost.

Forward signature is the L1 tagger's: ``forward(x, mask, pair=None) -> logits``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from l1tagger.errors import ConfigError, DataError
from l1tagger.models.tagger import check_mask


@dataclass
class ParTConfig:
    """Widths of the reference ParT (see module docstring for presets)."""

    n_particles: int = 128
    n_features: int = 17
    n_classes: int = 10
    embed_dims: tuple = (128, 512, 128)
    pair_dims: tuple = (64, 64, 64)
    n_heads: int = 8
    n_layers: int = 8
    n_cls_layers: int = 2
    ffn_ratio: int = 4
    fc_dims: tuple = ()
    pair_bias: bool = True

    @property
    def d_model(self) -> int:
        return self.embed_dims[-1]

    def validate(self) -> "ParTConfig":
        if self.d_model % self.n_heads:
            raise ConfigError(f"embed_dims[-1]={self.d_model} is not divisible by n_heads={self.n_heads}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def preset(name: str, n_features: int, n_classes: int, n_particles: int = 128) -> ParTConfig:
    presets = {
        "part": dict(embed_dims=(128, 512, 128), pair_dims=(64, 64, 64), n_heads=8, fc_dims=()),
        "part_lite": dict(embed_dims=(64, 256, 64), pair_dims=(32, 32, 32), n_heads=8, fc_dims=(512, 316)),
    }
    if name not in presets:
        raise ConfigError(f"unknown ParT preset {name!r}; choose one of {sorted(presets)}")
    return ParTConfig(n_particles=n_particles, n_features=n_features, n_classes=n_classes, **presets[name]).validate()


def matched(cfg) -> ParTConfig:
    """A ParT with the widths of an L1 ``ModelConfig`` (LayerNorm, GELU and class-token blocks kept)."""
    return ParTConfig(
        n_particles=cfg.n_particles, n_features=cfg.n_features, n_classes=cfg.n_classes,
        embed_dims=(cfg.embed_dim, cfg.d_model), pair_dims=(cfg.pair_hidden,), n_heads=cfg.n_heads,
        n_layers=cfg.n_blocks, n_cls_layers=1, ffn_ratio=max(1, cfg.ffn_dim // cfg.d_model),
        fc_dims=(cfg.head_dim,), pair_bias=cfg.pair_bias,
    ).validate()


class _Block(nn.Module):
    def __init__(self, d: int, heads: int, ffn_ratio: int):
        super().__init__()
        self.heads = heads
        self.pre_attn_norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.post_attn_norm = nn.LayerNorm(d)
        self.pre_fc_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, d * ffn_ratio)
        self.act = nn.GELU()
        self.act_ln = nn.LayerNorm(d * ffn_ratio)
        self.fc2 = nn.Linear(d * ffn_ratio, d)

    def forward(self, x, key_padding_mask, attn_mask=None, x_cls=None):
        if x_cls is not None:  # class attention: the class token queries [cls, particles]
            u = self.pre_attn_norm(torch.cat([x_cls, x], dim=1))
            pad = torch.cat([torch.zeros_like(key_padding_mask[:, :1]), key_padding_mask], dim=1)
            a = self.attn(x_cls, u, u, key_padding_mask=pad, need_weights=False)[0]
            residual = x_cls
        else:
            u = self.pre_attn_norm(x)
            kpm = None if attn_mask is not None else key_padding_mask  # padding is already inside attn_mask
            a = self.attn(u, u, u, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=False)[0]
            residual = x
        x = self.post_attn_norm(a) + residual
        return x + self.fc2(self.act_ln(self.act(self.fc1(self.pre_fc_norm(x)))))


class ParT(nn.Module):
    """Float reference Particle Transformer (LayerNorm, GELU, class-token blocks)."""

    def __init__(self, cfg: ParTConfig):
        super().__init__()
        self.cfg = cfg.validate()
        layers, prev = [], cfg.n_features
        for dim in cfg.embed_dims:
            layers += [nn.LayerNorm(prev), nn.Linear(prev, dim), nn.GELU()]
            prev = dim
        self.embed = nn.Sequential(*layers)
        d = cfg.d_model
        if cfg.pair_bias:
            layers, prev = [], 4
            for dim in cfg.pair_dims:
                layers += [nn.LayerNorm(prev), nn.Linear(prev, dim), nn.GELU()]
                prev = dim
            layers += [nn.Linear(prev, cfg.n_heads)]
            self.pair_embed = nn.Sequential(*layers)
        else:
            self.pair_embed = None
        self.blocks = nn.ModuleList(_Block(d, cfg.n_heads, cfg.ffn_ratio) for _ in range(cfg.n_layers))
        self.cls_blocks = nn.ModuleList(_Block(d, cfg.n_heads, cfg.ffn_ratio) for _ in range(cfg.n_cls_layers))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.norm = nn.LayerNorm(d)
        layers, prev = [], d
        for dim in cfg.fc_dims:
            layers += [nn.Linear(prev, dim), nn.ReLU()]
            prev = dim
        layers.append(nn.Linear(prev, cfg.n_classes))
        self.head = nn.Sequential(*layers)

    def forward(self, x, mask, pair=None):
        B, N, F = x.shape
        if N != self.cfg.n_particles or F != self.cfg.n_features:
            raise DataError(f"x must have shape (B, {self.cfg.n_particles}, {self.cfg.n_features}), got {tuple(x.shape)}")
        check_mask(mask)
        real = mask.bool()
        pad = ~real
        h = self.embed(x) * real.unsqueeze(-1)
        attn_mask = None
        if self.pair_embed is not None:
            if pair is None:
                raise DataError("this ParT uses the interaction bias: pass pair (B, N, N, 4)")
            u = self.pair_embed(pair).permute(0, 3, 1, 2)  # (B,H,N,N)
            u = u.masked_fill(pad[:, None, None, :], float("-inf"))  # padded keys
            attn_mask = u.reshape(B * self.cfg.n_heads, N, N)
        for blk in self.blocks:
            h = blk(h, pad, attn_mask)
            h = h * real.unsqueeze(-1)
        c = self.cls_token.expand(B, 1, -1)
        for blk in self.cls_blocks:
            c = blk(h, pad, x_cls=c)
        return self.head(self.norm(c).squeeze(1))
