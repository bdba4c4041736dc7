"""Jet taggers over particle constituents (float PyTorch). The quantized twins are built from the same code
with a different op factory (``l1tagger.qat.ops.QuantOps``).

    build_model(ModelConfig(...))           -> L1Tagger (float)
    build_model(cfg, ops=QuantOps(recipe))  -> its quantized twin (loads the float state_dict)
    ParT(preset("part_lite", F, C))         -> float reference, not for firmware
"""

from l1tagger.models.config import ModelConfig
from l1tagger.models.macs import count_macs
from l1tagger.models.tagger import L1Tagger, recording


def build_model(cfg: ModelConfig, ops=None) -> L1Tagger:
    return L1Tagger(cfg, ops=ops)


__all__ = ["ModelConfig", "L1Tagger", "build_model", "count_macs", "recording"]
