"""Attention rollout (Abnar & Zuidema, ACL 2020, arXiv:2005.00928).

For each block l the head-fused attention A_l (B, T, T) gets the identity added for the residual connection and
is row-normalised: Â_l = (A_l + I) / rowsum(A_l + I). The rollout multiplies through the layers from the input
upwards, R = Â_L · … · Â_2 · Â_1, so R[i, j] is the share of token i's output traced back to input token j. Every
row of every Â_l sums to 1, hence every row of R does too. The class-token row R[0, 1:] over the patches, reshaped
to the patch grid and spread over the pixels of each patch, is the jet's attention map.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from l1tagger.utils.progress import progress

from l1tagger.errors import ConfigError

#: how the heads of one block are fused into one (T, T) matrix; "mean" is the published rollout
HEAD_FUSIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mean": lambda a: a.mean(dim=1),
    "max": lambda a: a.amax(dim=1),
    "min": lambda a: a.amin(dim=1),
}


def attention_rollout(attentions: Sequence[torch.Tensor], head_fusion: str = "mean",
                      residual: bool = True) -> torch.Tensor:
    """Rollout of per-block attention weights [(B, H, T, T), ...] (input block first) -> (B, T, T)."""
    if head_fusion not in HEAD_FUSIONS:
        raise ConfigError(f"head_fusion: {head_fusion!r} is not one of {sorted(HEAD_FUSIONS)}")
    if not attentions:
        raise ConfigError("attention_rollout needs the attention weights of at least one block")
    rollout = None
    for a in attentions:
        if a.dim() != 4 or a.shape[-1] != a.shape[-2]:
            raise ConfigError(f"attention weights must have shape (B, heads, T, T), got {tuple(a.shape)}")
        fused = HEAD_FUSIONS[head_fusion](a.detach().double())
        if residual:
            fused = fused + torch.eye(fused.shape[-1], dtype=fused.dtype, device=fused.device)
        fused = fused / fused.sum(dim=-1, keepdim=True)
        rollout = fused if rollout is None else fused @ rollout
    return rollout


def class_token_maps(rollout: torch.Tensor, grid: int) -> np.ndarray:
    """Class-token row over the patches, renormalised to sum 1, as (B, grid, grid) numpy (row-major patches)."""
    row = rollout[:, 0, 1:]
    if row.shape[-1] != grid * grid:
        raise ConfigError(f"rollout has {row.shape[-1]} patch tokens, expected {grid}x{grid}")
    row = row / row.sum(dim=-1, keepdim=True).clamp_min(1e-30)
    return row.reshape(-1, grid, grid).cpu().numpy()


def upsample_maps(maps: np.ndarray, patch_size: int) -> np.ndarray:
    """(B, g, g) patch maps -> (B, g*p, g*p) pixel maps; each patch's share is spread evenly over its p*p pixels,
    so a map that sums to 1 still sums to 1."""
    maps = np.asarray(maps, dtype=np.float64)
    return np.repeat(np.repeat(maps, patch_size, axis=-2), patch_size, axis=-1) / float(patch_size * patch_size)


@torch.no_grad()
def rollout_maps(model, images, batch_size: int = 256, head_fusion: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` (a JetViT) on images (n, size, size); return (pixel maps (n, size, size) summing to 1 each,
    class probabilities (n, n_classes))."""
    model.eval()
    cfg = model.config
    maps, probs = [], []
    images = torch.as_tensor(np.asarray(images, dtype=np.float32))
    starts = range(0, len(images), batch_size)
    for start in progress(starts, desc="attention rollout", disable=len(starts) < 4, leave=False):
        logits, att = model(images[start:start + batch_size], return_attention=True)
        maps.append(upsample_maps(class_token_maps(attention_rollout(att, head_fusion), cfg.grid), cfg.patch_size))
        probs.append(torch.softmax(logits, -1).numpy())
    return np.concatenate(maps), np.concatenate(probs)
