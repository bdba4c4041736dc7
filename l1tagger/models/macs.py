"""Multiply-accumulates per jet, computed analytically from a ModelConfig (dense graph, as the firmware builds it).

Counted: every weight multiply of a linear layer and every multiply of an activation matmul. Not counted:
biases, softmax (table look-ups), mask multiplies, residual adds. Top-k's sparse weights are counted dense
(``av_sparse`` gives the count if the zero weights were skipped).
"""

from __future__ import annotations

from l1tagger.models.config import ModelConfig


def count_macs(cfg: ModelConfig) -> dict[str, int]:
    N, F, d, H = cfg.n_particles, cfg.n_features, cfg.d_model, cfg.n_heads
    dh = cfg.head_size
    lin = cfg.attention == "linformer"
    nk = cfg.linformer_k if lin else N  # keys per query row
    parts = {
        "embed": N * (F * cfg.embed_dim + cfg.embed_dim * d),
        "pair": N * N * (4 * cfg.pair_hidden + cfg.pair_hidden * H) if cfg.pair_bias else 0,
    }
    blk = {
        "qkv": 3 * N * d * dh * H,
        "projection": 2 * cfg.linformer_k * N * dh * H + (H * N * N * cfg.linformer_k if cfg.pair_bias else 0)
        if lin else 0,
        "qk": H * N * nk * dh,
        "av": H * N * nk * dh,
        "attn_out": N * d * d,
        "ffn": 2 * N * d * cfg.ffn_dim,
    }
    for k, v in blk.items():
        parts[f"blocks.{k}"] = cfg.n_blocks * v
    parts["cls"] = N * d * H + N * d * dh * H + N * dh * H + d * d
    parts["head"] = d * cfg.head_dim + cfg.head_dim * cfg.n_classes
    parts["total"] = sum(parts.values())
    if cfg.attention == "topk":
        parts["av_sparse"] = cfg.n_blocks * H * N * min(cfg.topk_k, N) * dh
    return parts
