"""The documented configuration of the L1 tagger family (float and quantized twins share it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from l1tagger.errors import ConfigError
from l1tagger.utils import dataclass_io

ATTENTIONS = ("full", "linformer", "topk")
ORDERINGS = ("pt", "dr", "cluster")
LINFORMER_INITS = ("random", "blocks", "log_blocks")
INPUTS = ("features", "l1words")
#: designs of the interaction bias U (docs/interaction.md)
INTERACTIONS = ("mlp", "mlp_sym", "table", "table_sym")


@dataclass
class ModelConfig:
    """One configurable L1 tagger: particle embedding -> n_blocks attention blocks -> class attention -> head.

    Inputs
      n_particles:  N, particles per jet the model takes (jets are truncated/padded to N in preprocessing)
      inputs:       "features" - graph inputs x (B,N,F), mask (B,N) [, pair (B,N,N,4)] computed off chip in float
                    and standardised; "l1words" - one graph input ``words`` (B,N,n_fields): integer L1 particle
                    words (``l1tagger.data.words``), from which x, the mask (the valid bit) and pair are computed
                    on chip, bit-exactly (``l1tagger.contract.l1features``, docs/l1_inputs.md)
      l1features:   with "l1words": the L1FeatureSpec as a mapping (keys of ``L1FeatureSpec.from_dict``: format,
                    particle_features, frac, x_bits, pair_bits, log_mantissa_bits, max_particles, delta, pair_set,
                    code_mantissa_bits; {} = defaults; pair_set "words" / "part_codes" = U from the words' angle
                    codes instead of ParT's logs, docs/interaction.md)
      features:     particle feature set name (``l1tagger.features.FEATURE_SETS``: "full", "kin", "l1"); with
                    "l1words" the spec's particle_features are used instead
      n_features:   F, number of particle features (derived from ``features`` or the spec when 0)
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
      interaction:  how U is computed from the pair features (docs/interaction.md): "mlp" - ParT's per-pair MLP over
                    all N x N pairs; "mlp_sym" - the same MLP over the N(N+1)/2 unique pairs i <= j, scattered back
                    to N x N (the pair features are symmetric); "table" - U_h = sum_f T[f,h][q_f], per-feature
                    tables of the pair features on a coarse grid (op ``L1PairTable``); "table_sym" - the tables
                    over the unique pairs
      pair_table_bits: with "table"/"table_sym": index bits of each table (2^bits entries per feature and head)
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
    interaction: str = "mlp"
    pair_table_bits: int = 5
    linformer_k: int = 4
    linformer_init: str = "random"
    linformer_fixed: bool = False
    topk_k: int = 2
    ordering: str = "pt"
    inputs: str = "features"
    l1features: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.inputs == "l1words" and not self.n_features:
            self.n_features = self.l1_spec.n_features
        if not self.n_features:
            from l1tagger.features.particle import resolve_feature_names

            try:
                self.n_features = len(resolve_feature_names(self.features))
            except Exception as exc:  # DataError -> ConfigError for a config file
                raise ConfigError(f"features: {exc}") from None

    @property
    def head_size(self) -> int:
        return self.d_model // self.n_heads

    @property
    def l1_spec(self):
        """The :class:`~l1tagger.contract.l1features.L1FeatureSpec` of an "l1words" model (ConfigError naming the
        bad key)."""
        from l1tagger.contract.l1features import L1FeatureSpec

        return L1FeatureSpec.from_dict(self.l1features, "l1features")

    @property
    def symmetric_pairs(self) -> bool:
        """Whether U is computed over the unique pairs i <= j only (interaction "mlp_sym" / "table_sym")."""
        return self.pair_bias and self.interaction.endswith("_sym")

    @property
    def chip_spec(self):
        """The L1FeatureSpec the model's on-chip feature ops use: :attr:`l1_spec`, with ``pairs: upper`` for the
        symmetric interaction designs."""
        import dataclasses as dc

        spec = self.l1_spec
        return dc.replace(spec, pairs="upper") if self.symmetric_pairs else spec

    def validate(self) -> "ModelConfig":
        for key, allowed in (("attention", ATTENTIONS), ("ordering", ORDERINGS), ("linformer_init", LINFORMER_INITS),
                             ("inputs", INPUTS), ("interaction", INTERACTIONS)):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}: {getattr(self, key)!r} is not one of {list(allowed)}")
        for key in ("n_particles", "n_features", "n_classes", "d_model", "n_heads", "n_blocks", "ffn_dim",
                    "embed_dim", "head_dim", "pair_hidden", "linformer_k", "topk_k", "pair_table_bits"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{key}: must be a positive integer, got {v!r}")
        from l1tagger.contract.pairtable import BITS_RANGE

        if not BITS_RANGE[0] <= self.pair_table_bits <= BITS_RANGE[1]:
            raise ConfigError(f"pair_table_bits: {self.pair_table_bits} is outside [{BITS_RANGE[0]}, {BITS_RANGE[1]}]")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model: {self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.n_classes < 2:
            raise ConfigError(f"n_classes: need at least 2 classes, got {self.n_classes}")
        if self.attention == "linformer" and self.linformer_k > self.n_particles:
            raise ConfigError(f"linformer_k: {self.linformer_k} exceeds n_particles={self.n_particles}")
        if self.inputs == "l1words":
            if "pairs" in self.l1features:
                raise ConfigError("l1features: 'pairs' is set by model.interaction (the symmetric designs compute the "
                                  "unique pairs only), not in l1features")
            spec = self.l1_spec
            if self.n_features != spec.n_features:
                raise ConfigError(f"n_features: {self.n_features}, but l1features computes {spec.n_features} "
                                  f"particle features {list(spec.particle_features)}")
            if self.n_particles > spec.max_particles:
                raise ConfigError(f"n_particles: {self.n_particles} exceeds l1features max_particles = "
                                  f"{spec.max_particles}")
        elif self.l1features:
            raise ConfigError(f"l1features: given, but inputs is {self.inputs!r}; set inputs: l1words to use it")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, path: str = "") -> "ModelConfig":
        """Strict (``l1tagger.utils.dataclass_io.from_dict``) and validated; every error names the dotted field
        (``path``: where this config sits in a larger document, e.g. "model")."""
        return dataclass_io.validated(dataclass_io.from_dict(cls, data, path), path)
