"""The documented training configuration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from l1tagger.errors import ConfigError
from l1tagger.models.config import ModelConfig
from l1tagger.utils import dataclass_io

SCHEDULES = ("cosine", "onecycle", "constant")
MODEL_KINDS = ("l1", "part")


@dataclass
class TrainConfig:
    """How to train a tagger.

    model:         the ModelConfig (architecture and inputs)
    model_kind:    "l1" (the firmware tagger, built through the op factory) or "part" (float ParT reference:
                   ``part_preset`` "" = same widths as ``model`` with LayerNorm/GELU, or "part"/"part_lite")
    epochs, batch_size, lr, weight_decay: AdamW settings
    schedule:      "cosine" (per-step cosine decay to 0), "onecycle" (warm-up 30 % then anneal) or "constant"
    grad_clip:     max gradient norm (0 = off)
    seed:          seeds initialisation and the per-epoch shuffles (epoch e uses seed + e, so resume is exact)
    device:        "auto" (CUDA when available, else CPU), "cpu" or "cuda"
    num_threads:   torch CPU threads
    feature_clip:  standardised inputs are clipped to [-feature_clip, feature_clip]
    background:    background class names for rejection ([] = QCD/light classes found by name)
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    model_kind: str = "l1"
    part_preset: str = ""
    epochs: int = 12
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-2
    schedule: str = "cosine"
    grad_clip: float = 1.0
    seed: int = 1
    device: str = "auto"
    num_threads: int = 1
    feature_clip: float = 8.0
    background: list[str] = field(default_factory=list)

    def validate(self) -> "TrainConfig":
        dataclass_io.validated(self.model, "model")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule: {self.schedule!r} is not one of {list(SCHEDULES)}")
        if self.model_kind not in MODEL_KINDS:
            raise ConfigError(f"model_kind: {self.model_kind!r} is not one of {list(MODEL_KINDS)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device: {self.device!r} is not one of ['auto', 'cpu', 'cuda']")
        for key in ("epochs", "batch_size", "num_threads"):
            if int(getattr(self, key)) <= 0:
                raise ConfigError(f"{key}: must be a positive integer, got {getattr(self, key)!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr: must be > 0, got {self.lr}")
        if not self.feature_clip > 0:
            raise ConfigError(f"feature_clip: must be > 0, got {self.feature_clip}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, path: str = "") -> "TrainConfig":
        """Strict (``l1tagger.utils.dataclass_io.from_dict``; the model section a mapping of ModelConfig keys) and
        validated; every error names the dotted field (``path``: where this config sits in a larger document)."""
        return dataclass_io.validated(dataclass_io.from_dict(cls, data, path), path)
