"""The documented configuration of the L1 tagger family (float and quantized twins share it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from l1tagger.errors import ConfigError

ATTENTIONS = ("full", "linformer", "topk")
ORDERINGS = ("pt", "dr", "cluster")
LINFORMER_INITS = ("random", "blocks", "log_blocks")


@dataclass
class ModelConfig:
    """One configurable L1 tagger: particle embedding -> n_blocks attention blocks -> class attention -> head.

    Inputs
      n_particles:  N, particles per jet the model takes (jets are truncated/padded to N in preprocessing)
      features:     particle feature set name (``l1tagger.features.FEATURE_SETS``: "full", "kin", "l1")
      n_features:   F, number of particle features (derived from ``features`` when 0)
      n_classes:    number of output logits
    Width
      d_model:      particle embedding width d (split into n_heads heads of d/n_heads)
      n_heads:      attention heads
      n_blocks:     particle attention blocks
      ffn_dim:      hidden width of each block's feed-forward (linear-relu-linear)
      embed_dim:    hidden width of the particle embedding (linear-relu-linear F -> embed_dim -> d)
      head_dim:     hidden width of the classifier head (linear-relu-linear d -> head_dim -> n_classes)
    Attention
      attention:    "full" | "linformer" | "topk"
      pair_bias:    add the ParT interaction bias U (pair MLP over the 4 pairwise features, one channel per head);
                    for linformer U is projected along the key axis like the keys (see tagger.py)
      pair_hidden:  hidden width of the pair MLP (4 -> pair_hidden -> 1 per head)
      linformer_k:  projected length k of keys/values (linformer)
      linformer_init: "random" (Linformer), "blocks" (soft contiguous blocks of the ordered particles: subjets
                    under "cluster" ordering, Delta-R rings under "dr"), "log_blocks" (leading particles alone,
                    the soft tail merged in blocks doubling in size)
      linformer_fixed: keep the projection matrices at their initial value (not trained)
      topk_k:       kept keys per query row (topk)
      ordering:     particle order fed to the model: "pt", "dr" (Delta-R to the jet axis), "cluster" (C/A history).
                    Matters only for linformer; full/topk taggers are permutation invariant.
    """

    n_particles: int = 16
    features: str = "kin"
    n_features: int = 0
    n_classes: int = 5
    d_model: int = 16
    n_heads: int = 2
    n_blocks: int = 1
    ffn_dim: int = 32
    embed_dim: int = 32
    head_dim: int = 32
    attention: str = "full"
    pair_bias: bool = True
    pair_hidden: int = 8
    linformer_k: int = 4
    linformer_init: str = "random"
    linformer_fixed: bool = False
    topk_k: int = 2
    ordering: str = "pt"

    def __post_init__(self):
        if not self.n_features:
            from l1tagger.features.particle import resolve_feature_names

            try:
                self.n_features = len(resolve_feature_names(self.features))
            except Exception as exc:  # DataError -> ConfigError for a config file
                raise ConfigError(f"features: {exc}") from None

    @property
    def head_size(self) -> int:
        return self.d_model // self.n_heads

    def validate(self) -> "ModelConfig":
        for key, allowed in (("attention", ATTENTIONS), ("ordering", ORDERINGS), ("linformer_init", LINFORMER_INITS)):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}: {getattr(self, key)!r} is not one of {list(allowed)}")
        for key in ("n_particles", "n_features", "n_classes", "d_model", "n_heads", "n_blocks", "ffn_dim",
                    "embed_dim", "head_dim", "pair_hidden", "linformer_k", "topk_k"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{key}: must be a positive integer, got {v!r}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model: {self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.n_classes < 2:
            raise ConfigError(f"n_classes: need at least 2 classes, got {self.n_classes}")
        if self.attention == "linformer" and self.linformer_k > self.n_particles:
            raise ConfigError(f"linformer_k: {self.linformer_k} exceeds n_particles={self.n_particles}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ConfigError(f"unknown model config key(s) {unknown}; known: {sorted(fields)}")
        return cls(**data).validate()
