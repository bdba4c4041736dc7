"""A small Vision Transformer for jet images that can return its attention weights.

Architecture (Dosovitskiy et al. 2021, pre-norm): non-overlapping ``patch_size`` patches → linear patch embedding
(a stride-``patch_size`` convolution) → prepend a learned class token → add a learned position embedding →
``depth`` encoder blocks ``x += MHSA(LN(x)); x += MLP(LN(x))`` → LN → linear head on the class token.

This is an offline baseline next to the L1 particle taggers: it uses LayerNorm and GELU freely and is not built
through the op factory (it is never quantized or converted to firmware).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from l1tagger.errors import ConfigError
from l1tagger.utils import dataclass_io
from l1tagger.vit.images import JetImageConfig


@dataclass
class ViTConfig:
    """Architecture of a jet-image ViT. The model is self-describing: the image recipe and class names travel with
    every checkpoint, so ``interpret_vit`` and ``evaluate`` rebuild exactly the inputs it was trained on.

    image:       the jet-image recipe (``JetImageConfig``); ``image.size`` must be a multiple of ``patch_size``
    patch_size:  side of a square patch in pixels ((size / patch_size)^2 patch tokens plus one class token)
    dim:         token width
    depth:       number of encoder blocks
    heads:       attention heads per block (dim must be divisible by heads)
    mlp_dim:     hidden width of each block's MLP
    dropout:     dropout on attention weights, MLP and embeddings (0 = deterministic forward in training too)
    class_names: output classes in logit order (set by ``train_vit`` from the training jets)
    class_groups: {class: [dataset class names]} when the model was trained on a task that groups dataset classes
                 (see ``l1tagger.vit.tasks``); empty = the dataset classes are the model classes
    """

    image: JetImageConfig = field(default_factory=JetImageConfig)
    patch_size: int = 4
    dim: int = 64
    depth: int = 4
    heads: int = 4
    mlp_dim: int = 128
    dropout: float = 0.0
    class_names: list[str] = field(default_factory=list)
    class_groups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image.size // self.patch_size

    @property
    def n_tokens(self) -> int:
        return self.grid * self.grid + 1

    def validate(self) -> "ViTConfig":
        dataclass_io.validated(self.image, "image")
        for key in ("patch_size", "dim", "depth", "heads", "mlp_dim"):
            val = getattr(self, key)
            if isinstance(val, bool) or not isinstance(val, int) or val <= 0:
                raise ConfigError(f"{key}: must be a positive integer, got {val!r}")
        if self.image.size % self.patch_size:
            raise ConfigError(f"patch_size: image size {self.image.size} is not a multiple of {self.patch_size}")
        if self.dim % self.heads:
            raise ConfigError(f"dim: {self.dim} is not divisible by heads={self.heads}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"dropout: must be in [0, 1), got {self.dropout!r}")
        if len(self.class_names) < 2:
            raise ConfigError(f"class_names: need at least 2 classes, got {self.class_names!r}")
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["class_names"] = list(self.class_names)
        d["class_groups"] = {k: list(v) for k, v in self.class_groups.items()}
        return d

    @classmethod
    def from_dict(cls, data: dict, path: str = "") -> "ViTConfig":
        """Strict (``l1tagger.utils.dataclass_io.from_dict``; errors name the dotted field). The image recipe is
        validated; the rest by :meth:`validate` (``class_names`` may still be empty: ``train_vit`` fills them)."""
        cfg = dataclass_io.from_dict(cls, data, path)
        dataclass_io.validated(cfg.image, dataclass_io.join_path(path, "image"))
        return cfg


class Attention(nn.Module):
    """Multi-head self-attention written out so the softmax weights can be returned."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, D = x.shape
        q, k, v = self.qkv(x).reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        weights = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)  # (B, H, T, T)
        out = (self.drop(weights) @ v).transpose(1, 2).reshape(B, T, D)
        return self.proj(out), weights


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim),
                                 nn.Dropout(dropout))

    def forward(self, x):
        a, w = self.attn(self.norm1(x))
        x = x + a
        return x + self.mlp(self.norm2(x)), w


class JetViT(nn.Module):
    """``forward(images)`` with images (B, size, size) or (B, 1, size, size) returns logits (B, n_classes);
    ``forward(images, return_attention=True)`` returns (logits, [attention (B, heads, T, T) per block]),
    token 0 being the class token and tokens 1.. the patches in row-major (y, x) order."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config.validate()
        c = config
        self.patch_embed = nn.Conv2d(1, c.dim, kernel_size=c.patch_size, stride=c.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, c.n_tokens, c.dim))
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList([Block(c.dim, c.heads, c.mlp_dim, c.dropout) for _ in range(c.depth)])
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.n_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, images: torch.Tensor, return_attention: bool = False):
        if images.dim() == 3:
            images = images.unsqueeze(1)
        s = self.config.image.size
        if images.shape[1:] != (1, s, s):
            raise ConfigError(f"JetViT expects images of shape (B, 1, {s}, {s}), got {tuple(images.shape)}")
        x = self.patch_embed(images).flatten(2).transpose(1, 2)  # (B, N, D), row-major patches
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.drop(x)
        attentions = []
        for block in self.blocks:
            x, w = block(x)
            attentions.append(w)
        logits = self.head(self.norm(x[:, 0]))
        return (logits, attentions) if return_attention else logits


def vit_macs(config: ViTConfig) -> dict[str, int]:
    """Multiply-accumulates per jet, counted analytically (matrix products only; LayerNorm, GELU, softmax, bias
    additions and the residual sums are not MACs and are left out). Matches torch's FLOP counter (2 FLOPs per MAC).
    """
    c = config
    N, T, D, P = c.grid * c.grid, c.n_tokens, c.dim, c.patch_size
    per_block = {
        "qkv": T * D * 3 * D,
        "scores": T * T * D,  # q k^T summed over heads: heads * T * T * (D / heads)
        "weighted_values": T * T * D,
        "proj": T * D * D,
        "mlp": 2 * T * D * c.mlp_dim,
    }
    macs = {"patch_embed": N * P * P * D}
    for key, val in per_block.items():
        macs[f"blocks.{key}"] = c.depth * val
    macs["head"] = D * c.n_classes
    macs["total"] = sum(macs.values())
    return macs


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def freeze_all_but_last(model: JetViT, n_blocks: int) -> list[str]:
    """Freeze every parameter except those of the last ``n_blocks`` encoder blocks, the final norm and the head
    (the fine-tuning recipe of the jet-image ViT papers). Returns the names of the trainable parameters."""
    depth = len(model.blocks)
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or not 0 <= n_blocks <= depth:
        raise ConfigError(f"finetune_blocks: must be an integer in [0, {depth}], got {n_blocks!r}")
    trainable_prefixes = tuple(f"blocks.{i}." for i in range(depth - n_blocks, depth)) + ("norm.", "head.")
    names = []
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(trainable_prefixes)
        if p.requires_grad:
            names.append(name)
    return names
