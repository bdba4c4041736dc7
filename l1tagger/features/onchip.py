"""The on-chip features from L1 particle words in torch: the training forward of ``ModelConfig.inputs = "l1words"``.

The integer algorithm is :func:`l1tagger.contract.l1features.features_int`, the same function the numpy reference
runs, here with ``xp = torch`` and the spec's tables as (non-persistent) buffers, so training computes exactly the
integers the QONNX reference, the C simulation and the RTL compute (``docs/l1_inputs.md``).

* :class:`WordFeatureOp` - one kind ("particle" -> x (B, N, F), "mask" -> the valid bit (B, N), "pair" -> pair
  (B, N, N, 4)): float words in (values on the unit grid), float features out (q * 2^-frac). No gradient flows to
  the words (they are data). Exported as the custom node ``l1tagger.export.custom_ops::L1ParticleFeatures`` /
  ``L1WordMask`` / ``L1PairFeatures`` with the spec as JSON.
* :class:`OnChipFeatures` - the model's input block: words -> (x, mask, pair). ``word_quant`` puts the words on the
  unit grid (a Quant node in the exported graph), ``x_quant`` / ``pair_quant`` declare the feature grids
  (idempotent Quant nodes); the mask (0/1) needs none. The op factories (``l1tagger.models.ops.FloatOps.l1features``
  and ``l1tagger.qat.ops.QuantOps.l1features``) choose the quantizers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from l1tagger.contract.l1features import (KINDS, OP_OF_KIND, L1FeatureSpec, features_int, features_np, output_grid,
                                          output_shape)
from l1tagger.contract.softmax import ONNX_DOMAIN
from l1tagger.data.words import check_words
from l1tagger.errors import ConfigError, DataError
from l1tagger.models.ops import exporting


class WordFeatureOp(nn.Module):
    """Bit-exact on-chip features of one kind ("particle", "mask" or "pair") from float words on the unit grid."""

    def __init__(self, spec: L1FeatureSpec, kind: str):
        super().__init__()
        if not isinstance(spec, L1FeatureSpec):
            raise ConfigError(f"WordFeatureOp needs an L1FeatureSpec, got {type(spec).__name__}")
        if kind not in KINDS:
            raise ConfigError(f"WordFeatureOp kind {kind!r}; choose one of {list(KINDS)}")
        self.kind = kind
        self.op_type = OP_OF_KIND[kind]
        self.spec = spec
        # not persistent: the tables are a function of the spec (checkpoints stay free of them)
        for name, table in spec.tables().items():
            self.register_buffer(f"table_{name}", torch.from_numpy(table.copy()), persistent=False)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, spec={self.spec.to_json()}"

    def to_int(self, words: torch.Tensor) -> torch.Tensor:
        """int64 words; outside tracing, checked (DataError naming the jet, the particle and the field)."""
        if not exporting():
            check_words(words.detach().cpu().numpy(), self.spec.format)
            if words.shape[-2] > self.spec.max_particles:
                raise DataError(f"words: {words.shape[-2]} particles exceed the spec's max_particles = "
                                f"{self.spec.max_particles}")
        return torch.round(words.detach()).to(torch.int64)

    def forward_exact(self, words: torch.Tensor) -> torch.Tensor:
        tables = {name: getattr(self, f"table_{name}") for name in self.spec.tables()}
        q = features_int(self.to_int(words), self.spec, tables, torch, (self.kind,))[self.kind]
        return (q.to(torch.float64) * 2.0 ** -output_grid(self.spec, self.kind)[2]).to(words.dtype)

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            return _WordFeatureExport.apply(words, self.spec.to_json(), self.op_type, self)
        return self.forward_exact(words)


class _WordFeatureExport(torch.autograd.Function):
    """Export path: ONNX symbolic = the custom node in the l1tagger domain. Its forward runs the numpy reference
    (the same integers, :func:`l1tagger.contract.l1features.features_np`): TorchScript's peephole pass fails on the
    traced integer program inside the node, which the symbolic replaces anyway."""

    @staticmethod
    def forward(ctx, words, spec_json, op_type, module):
        q = features_np(words.detach().cpu().numpy(), module.spec, (module.kind,))[module.kind]
        scale = 2.0 ** -output_grid(module.spec, module.kind)[2]
        return torch.from_numpy(q.astype(np.float64) * scale).to(words.dtype)

    @staticmethod
    def symbolic(g, words, spec_json, op_type, module):
        out = g.op(f"{ONNX_DOMAIN}::{op_type}", words, spec_s=spec_json)
        sizes = words.type().sizes()
        if sizes is not None:
            out.setType(words.type().with_sizes(list(output_shape(op_type, sizes, module.spec))))
        return out


class OnChipFeatures(nn.Module):
    """words (B, N, n_fields) -> (x (B, N, F), mask (B, N), pair (B, N, N, 4) or None), all computed on chip."""

    def __init__(self, spec: L1FeatureSpec, word_quant: nn.Module, x_quant: nn.Module, pair_quant: nn.Module | None):
        super().__init__()
        self.spec = spec
        self.word_quant = word_quant
        self.particle = WordFeatureOp(spec, "particle")
        self.x_quant = x_quant
        self.mask = WordFeatureOp(spec, "mask")
        self.pair = WordFeatureOp(spec, "pair") if pair_quant is not None else None
        self.pair_quant = pair_quant

    def check(self, words: torch.Tensor, n_particles: int) -> None:
        want = (n_particles, self.spec.format.n_fields)
        if words.dim() != 3 or tuple(words.shape[1:]) != want:
            raise DataError(f"words must have shape (B, {want[0]}, {want[1]}) for this model (format "
                            f"{self.spec.format.name!r}), got {tuple(words.shape)}")

    def forward(self, words: torch.Tensor):
        w = self.word_quant(words)
        x = self.x_quant(self.particle(w))
        mask = self.mask(w)
        pair = self.pair_quant(self.pair(w)) if self.pair is not None else None
        return x, mask, pair
