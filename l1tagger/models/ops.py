"""The op factory: the one seam between a float tagger and its Brevitas-quantized twin.

Every L1 model builds its layers through an ``Ops`` object instead of calling ``torch.nn`` directly. The float
factory below returns plain PyTorch modules; ``l1tagger.qat.ops.QuantOps`` returns Brevitas modules with the bit
widths named by a recipe in ``quantize/``. Because both factories are called with the same layer names in the same
order, the quantized twin has the same parameter names as the float model and loads its checkpoint directly.

Contract (every method takes the layer's dotted ``name`` first, so recipes can override single layers):

    input_quant(name)                 -> module(x): the preprocessing grid of a graph input (float: identity)
    quant(name)                       -> module(x): an explicit activation quantizer (float: identity)
    linear(name, in_f, out_f, bias)   -> module(x): x @ W^T + b over the last axis, output quantized
    relu(name)                        -> module(x): ReLU, output quantized
    matmul(name)                      -> module(a, b): a @ b of two activations, output quantized
    add(name)                         -> module(a, b): a + b of two activations, output quantized
    mul(name)                         -> module(a, b): a * b (broadcasting; used for masks), output quantized
    mask_mul(name)                    -> module(a, b): a * b of two 0/1 masks (broadcasting): exactly 0/1, so the
                                         quantized output is a constant 2-bit unsigned grid of scale 1
                                         (``l1tagger.qat.ops.MASK_BITS``), never trained or set by a recipe; a
                                         product by it costs bits(x) x 2
    softmax(name, topk)               -> module(logits, key_mask): softmax over the last axis where keys with
                                         key_mask == 0 and (if topk > 0) all but the topk largest logits of each
                                         row get exactly zero weight. Float: exact masked softmax; quantized: the
                                         bit-exact firmware softmax of ``l1tagger.qat.softmax``.
    l1features(name, spec, pair)      -> module(words) -> (x, mask, pair or None): the features computed on chip
                                         from L1 particle words (``l1tagger.features.onchip.OnChipFeatures``), the
                                         same integers in both; quantized: the words, mask and feature grids are
                                         declared by constant-scale Quant nodes.
    pair_table(name, bits, heads, F)  -> module(pair) -> U (..., heads): U_h = sum_f T[f, h][q_f(pair)], trainable
                                         tables T (F, heads, 2^bits) over the pair features on a coarse grid
                                         (:class:`PairTable`, ``l1tagger.contract.pairtable``); quantized: T goes
                                         through the recipe's ``act`` quantizer named ``name`` (straight-through).

Allowed in L1 models: only these ops plus reshape/transpose/concat/slicing of activations. No GELU, no LayerNorm,
no division, no exp outside softmax: every op has a fixed-point hardware form.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from l1tagger.contract import pairtable
from l1tagger.contract.softmax import ONNX_DOMAIN

NEG_INF = float("-inf")


def masked_topk_softmax(logits: torch.Tensor, key_mask: torch.Tensor | None, topk: int = 0) -> torch.Tensor:
    """Softmax over the last axis; masked keys and (topk > 0) non-top-k logits get weight exactly 0.

    key_mask broadcasts against logits' leading axes with the key axis last (e.g. (B, 1, N) or (B, 1, 1, N)).
    Ties at the k-th place are broken towards the lower key index, as in the firmware.
    """
    x = logits
    if key_mask is not None:
        x = x.masked_fill(~key_mask.bool(), NEG_INF)
    if topk and topk < x.shape[-1]:
        keep = topk_keep(x, topk)
        x = x.masked_fill(~keep, NEG_INF)
    w = torch.softmax(x, dim=-1)
    return torch.nan_to_num(w, nan=0.0)  # rows with every key masked -> 0


def topk_keep(x: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of the k largest entries per row (last axis), ties broken towards the lower index.

    rank_i = #{j: x_j > x_i} + #{j < i: x_j == x_i};  keep_i = rank_i < k.  This is the firmware's definition.
    """
    n = x.shape[-1]
    xi = x.unsqueeze(-1)  # (..., n, 1)  candidate i
    xj = x.unsqueeze(-2)  # (..., 1, n)  competitor j
    idx = torch.arange(n, device=x.device)
    lower = (idx[None, :] < idx[:, None])  # [i, j] = j < i
    beats = (xj > xi) | ((xj == xi) & lower)
    rank = beats.sum(-1)
    return rank < k


class _Binary(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, a, b):
        return self.fn(a, b)


class MaskedSoftmax(nn.Module):
    def __init__(self, topk: int = 0):
        super().__init__()
        self.topk = int(topk)

    def forward(self, logits, key_mask=None):
        return masked_topk_softmax(logits, key_mask, self.topk)


def exporting() -> bool:
    """Whether the forward runs under tracing / ONNX export (checks and calibration are skipped then)."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


class PairTable(nn.Module):
    """U (..., H) = sum_f T[f, h][idx_f(pair)] (``l1tagger.contract.pairtable``): trainable tables ``table``
    (F, H, 2^bits), quantized by ``table_quant`` (identity in float; gradients reach the entries straight through).

    The index range of each feature (``lo``, ``exp``: persistent buffers, in the checkpoint) is fixed from the first
    batch with real pairs the module sees outside export (``calibrate_range``: the 0.5 %..99.5 % range of the non-zero
    pair rows, 2^bits bins of width 2^exp, exp >= -4 so the edges lie on the 2^-4 input grids); a quantized twin
    loads it from the float checkpoint. No gradient flows into the pair features (they are data)."""

    def __init__(self, bits: int, n_heads: int, n_features: int, table_quant: nn.Module):
        super().__init__()
        self.bits, self.n_heads, self.n_features = int(bits), int(n_heads), int(n_features)
        self.table = nn.Parameter(0.02 * torch.randn(n_features, n_heads, 1 << self.bits))
        self.table_quant = table_quant
        self.register_buffer("lo", torch.zeros(n_features, dtype=torch.float64))
        self.register_buffer("exp", torch.zeros(n_features, dtype=torch.int64))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))

    def spec(self) -> pairtable.PairTableSpec:
        return pairtable.PairTableSpec(self.bits, self.n_heads, tuple(float(v) for v in self.lo),
                                       tuple(int(e) for e in self.exp))

    def extra_repr(self) -> str:
        return f"bits={self.bits}, n_heads={self.n_heads}, n_features={self.n_features}"

    @torch.no_grad()
    def calibrate(self, pair: torch.Tensor) -> bool:
        """Fix the index ranges from the real (non-zero) pair rows of ``pair``; False when it holds fewer than 8."""
        rows = pair.detach().reshape(-1, self.n_features).double().cpu().numpy()
        rows = rows[np.any(rows != 0, axis=1)]
        if len(rows) < 8:
            return False
        for f in range(self.n_features):
            lo, e = pairtable.calibrate_range(rows[:, f], self.bits)
            self.lo[f], self.exp[f] = lo, e
        self.calibrated.fill_(True)
        return True

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        if not bool(self.calibrated) and not exporting():
            self.calibrate(pair)
        t = self.table_quant(self.table)
        spec = self.spec()
        if torch.onnx.is_in_onnx_export():
            return _PairTableExport.apply(pair, t, spec.to_json(), spec)
        idx = pairtable.indices(pair.detach().double(), spec, torch)  # (..., F)
        u = 0
        for f in range(self.n_features):
            u = u + t[f][:, idx[..., f]]  # (H, ...)
        return u.movedim(0, -1)


class _PairTableExport(torch.autograd.Function):
    """Export path: the ``L1PairTable`` node of the l1tagger domain; its forward is the numpy reference."""

    @staticmethod
    def forward(ctx, pair, table, spec_json, spec):
        u = pairtable.pairtable_np(pair.detach().cpu().numpy(), table.detach().cpu().numpy(), spec)
        return torch.from_numpy(u).to(pair.dtype)

    @staticmethod
    def symbolic(g, pair, table, spec_json, spec):
        out = g.op(f"{ONNX_DOMAIN}::{pairtable.PAIR_TABLE_OP}", pair, table, spec_s=spec_json)
        sizes = pair.type().sizes()
        if sizes is not None:
            out.setType(pair.type().with_sizes(list(pairtable.output_shape(sizes, spec))))
        return out


class FloatOps:
    """Plain PyTorch layers."""

    quantized = False

    def input_quant(self, name: str) -> nn.Module:
        return nn.Identity()

    def quant(self, name: str) -> nn.Module:
        return nn.Identity()

    def linear(self, name: str, in_features: int, out_features: int, bias: bool = True) -> nn.Module:
        return nn.Linear(in_features, out_features, bias=bias)

    def relu(self, name: str) -> nn.Module:
        return nn.ReLU()

    def matmul(self, name: str) -> nn.Module:
        return _Binary(torch.matmul)

    def add(self, name: str) -> nn.Module:
        return _Binary(torch.add)

    def mul(self, name: str) -> nn.Module:
        return _Binary(torch.mul)

    def mask_mul(self, name: str) -> nn.Module:
        return _Binary(torch.mul)

    def softmax(self, name: str, topk: int = 0, n_keys: int | None = None) -> nn.Module:
        return MaskedSoftmax(topk)

    def l1features(self, name: str, spec, pair: bool) -> nn.Module:
        from l1tagger.features.onchip import OnChipFeatures

        return OnChipFeatures(spec, nn.Identity(), nn.Identity(), nn.Identity() if pair else None)

    def pair_table(self, name: str, bits: int, n_heads: int, n_features: int) -> nn.Module:
        return PairTable(bits, n_heads, n_features, nn.Identity())
