"""The firmware softmax in torch: the QAT emulation of the one integer definition in :mod:`l1tagger.contract.softmax`.

The algorithm is specified in ``docs/firmware_softmax.md``. The spec, its tables, the product rounding and the numpy
integer reference live in the torch-free contract (:mod:`l1tagger.contract.softmax`) and are re-exported here, so
``from l1tagger.qat.softmax import SoftmaxSpec, softmax_int`` keeps working. This module adds only the torch parts:

* :func:`softmax_int_torch` - the integer algorithm on int64 tensors (same tables, same :func:`round_shift`).
* :class:`FirmwareSoftmax` - the torch module used inside quantized models: bit-exact forward on float tensors that
  lie on the input grid, straight-through gradient of the float masked softmax, and an ONNX symbolic that exports
  it as the custom node ``l1tagger.export.custom_ops::FirmwareSoftmax`` (attributes ``spec`` and ``topk``).
"""

from __future__ import annotations

import torch
from torch import nn

from l1tagger.contract.softmax import (  # noqa: F401  (re-exported: the historical import path)
    ONNX_DOMAIN,
    ONNX_OP_TYPE,
    ROUNDING_MODES,
    SoftmaxSpec,
    round_shift,
    softmax_int,
    topk_keep_np,
)
from l1tagger.errors import ConfigError, DataError

__all__ = [
    "ONNX_DOMAIN", "ONNX_OP_TYPE", "ROUNDING_MODES", "SoftmaxSpec", "softmax_int", "topk_keep_np",
    "topk_keep_torch", "softmax_int_torch", "float_masked_softmax", "FirmwareSoftmax",
]


# ---------------------------------------------------------------------------------------------- torch emulation
def topk_keep_torch(q: torch.Tensor, keep: torch.Tensor, k: int) -> torch.Tensor:
    n = q.shape[-1]
    qi, qj = q.unsqueeze(-1), q.unsqueeze(-2)
    idx = torch.arange(n, device=q.device)
    lower = idx[None, :] < idx[:, None]
    beats = ((qj > qi) | ((qj == qi) & lower)) & keep.unsqueeze(-2)
    return keep & (beats.sum(-1) < k)


def softmax_int_torch(
    q: torch.Tensor, keep: torch.Tensor, topk: int, spec: SoftmaxSpec, exp_t: torch.Tensor, inv_t: torch.Tensor
) -> torch.Tensor:
    """The integer algorithm on int64 torch tensors (q: int64 logits, keep: bool, already broadcast)."""
    if 0 < topk < q.shape[-1]:
        keep = topk_keep_torch(q, keep, topk)
    m = torch.where(keep, q, torch.full_like(q, spec.in_min)).amax(dim=-1, keepdim=True)
    idx = ((m - q) >> spec.exp_shift).clamp(0, exp_t.numel() - 1)
    e = torch.where(keep, exp_t[idx], torch.zeros_like(q))
    s = e.sum(dim=-1, keepdim=True)
    r = inv_t[(s >> spec.inv_shift).clamp(max=inv_t.numel() - 1)]
    o = round_shift(e * r, spec.product_shift, spec.rounding)
    return o.clamp(max=spec.out_max)


def float_masked_softmax(logits: torch.Tensor, key_mask, topk: int) -> torch.Tensor:
    """The float reference whose gradient the straight-through estimator uses."""
    from l1tagger.models.ops import masked_topk_softmax

    return masked_topk_softmax(logits, key_mask, topk)


class _FirmwareSoftmaxFn(torch.autograd.Function):
    """Bit-exact forward; backward = gradient of the float masked (top-k) softmax at the same logits."""

    @staticmethod
    def forward(ctx, logits, key_mask, module):
        ctx.save_for_backward(logits)
        ctx.key_mask = key_mask
        ctx.topk = module.topk
        return module.forward_exact(logits, key_mask)

    @staticmethod
    def backward(ctx, grad_out):
        (logits,) = ctx.saved_tensors
        with torch.enable_grad():
            x = logits.detach().requires_grad_(True)
            y = float_masked_softmax(x, ctx.key_mask, ctx.topk)
            (g,) = torch.autograd.grad(y, x, grad_out)
        return g, None, None


class FirmwareSoftmax(nn.Module):
    """Bit-exact emulation of the firmware softmax on float tensors lying on the spec's input grid.

    forward(logits, key_mask=None): logits (..., N) with values q * 2^-in_frac; key_mask broadcastable to logits
    with the key axis last (nonzero = real key). Returns float32 weights on the output grid o * 2^-out_frac.
    Logits off the grid or out of range raise DataError (the preceding quantizer must define the grid).
    """

    def __init__(self, spec: SoftmaxSpec, topk: int = 0):
        super().__init__()
        if not isinstance(spec, SoftmaxSpec):
            raise ConfigError(f"FirmwareSoftmax needs a SoftmaxSpec, got {type(spec).__name__}")
        if int(topk) < 0:
            raise ConfigError(f"softmax topk must be >= 0, got {topk}")
        self.spec = spec
        self.topk = int(topk)
        # not persistent: the quantized twin loads the float model's state_dict unchanged
        self.register_buffer("exp_t", torch.from_numpy(spec.exp_table()), persistent=False)
        self.register_buffer("inv_t", torch.from_numpy(spec.inv_table()), persistent=False)

    def extra_repr(self) -> str:
        return f"topk={self.topk}, spec={self.spec.to_json()}"

    def to_int(self, logits: torch.Tensor) -> torch.Tensor:
        """Integer logits q = logits * 2^in_frac; DataError when a value is off the grid or out of range."""
        x = logits.detach().to(torch.float64) * (2.0**self.spec.in_frac)
        q = torch.round(x)
        if not torch.equal(q, x):
            bad = (q != x).nonzero()[0].tolist()
            raise DataError(
                f"FirmwareSoftmax input off its grid 2^-{self.spec.in_frac} at index {bad}: "
                "the preceding quantizer's scale must equal the softmax spec's in_frac"
            )
        q = q.to(torch.int64)
        if q.numel() and (int(q.min()) < self.spec.in_min or int(q.max()) > self.spec.in_max):
            raise DataError(
                f"FirmwareSoftmax input outside the in_bits={self.spec.in_bits} range: "
                f"[{int(q.min())}, {int(q.max())}]"
            )
        return q

    def forward_exact(self, logits: torch.Tensor, key_mask=None) -> torch.Tensor:
        q = self.to_int(logits)
        if key_mask is None:
            keep = torch.ones_like(q, dtype=torch.bool)
        else:
            keep = torch.broadcast_to(key_mask.detach() != 0, q.shape)
        o = softmax_int_torch(q, keep, self.topk, self.spec, self.exp_t, self.inv_t)
        return (o.to(torch.float64) * self.spec.out_scale).to(logits.dtype)

    def forward(self, logits: torch.Tensor, key_mask=None) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            return _FirmwareSoftmaxExport.apply(logits, key_mask, self.spec.to_json(), self.topk, self)
        return _FirmwareSoftmaxFn.apply(logits, key_mask, self)


class _FirmwareSoftmaxExport(torch.autograd.Function):
    """Export path: same forward, ONNX symbolic = custom node in the l1tagger domain."""

    @staticmethod
    def forward(ctx, logits, key_mask, spec_json, topk, module):
        return module.forward_exact(logits, key_mask)

    @staticmethod
    def symbolic(g, logits, key_mask, spec_json, topk, module):
        inputs = [logits] if key_mask is None else [logits, key_mask]
        out = g.op(f"{ONNX_DOMAIN}::{ONNX_OP_TYPE}", *inputs, spec_s=spec_json, topk_i=int(topk))
        out.setType(logits.type())
        return out
