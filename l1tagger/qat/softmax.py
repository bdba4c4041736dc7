"""The firmware softmax: one integer definition shared by training, the software reference and the firmware.

The algorithm is specified in ``docs/firmware_softmax.md``; this module is its executable form:

* :class:`SoftmaxSpec` - every type and table size, validated, serialisable (``to_dict``/``from_dict``/``to_json``),
  with the table *contents* as a defined function of the spec (:meth:`SoftmaxSpec.exp_table`,
  :meth:`SoftmaxSpec.inv_table`), so no consumer ever calls ``expf`` itself.
* :func:`softmax_int` - the numpy int64 reference (vectorised over any leading axes).
* :class:`FirmwareSoftmax` - the torch module used inside quantized models: bit-exact forward on float tensors that
  lie on the input grid, straight-through gradient of the float masked softmax, and an ONNX symbolic that exports
  it as the custom node ``l1tagger.export.custom_ops::FirmwareSoftmax`` (attributes ``spec`` and ``topk``).

All quantities are integers; "value" = integer * 2**-frac.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from l1tagger.errors import ConfigError, DataError

#: ONNX domain of the exported custom op (a Python module path: qonnx imports it to find the op class)
ONNX_DOMAIN = "l1tagger.export.custom_ops"
ONNX_OP_TYPE = "FirmwareSoftmax"

#: rounding modes of the final product onto the output grid
ROUNDING_MODES = ("floor", "half_up", "half_even")

#: (lowest, highest) allowed value of each integer field; the bounds keep every intermediate inside int64
_FIELD_RANGES: dict[str, tuple[int, int]] = {
    "in_bits": (2, 24),
    "in_frac": (-16, 32),
    "exp_table_bits": (1, 16),
    "exp_shift": (0, 24),
    "exp_frac": (1, 24),
    "inv_table_bits": (1, 16),
    "inv_shift": (0, 40),
    "inv_frac": (1, 30),
    "inv_bits": (1, 32),
    "out_bits": (1, 24),
    "out_frac": (-16, 40),
}


def _round_shift(p, shift: int, rounding: str, xp):
    """Round the non-negative integers ``p`` right by ``shift`` bits (numpy or torch int64)."""
    if shift == 0:
        return p
    q = p >> shift
    if rounding == "floor":
        return q
    half = 1 << (shift - 1)
    rem = p & ((1 << shift) - 1)
    if rounding == "half_up":
        return q + (rem >= half).astype(p.dtype) if xp is np else q + (rem >= half).to(p.dtype)
    # half_even: up when above half, or exactly half and q odd
    up = (rem > half) | ((rem == half) & ((q & 1) == 1))
    return q + (up.astype(p.dtype) if xp is np else up.to(p.dtype))


@dataclass(frozen=True)
class SoftmaxSpec:
    """Types and table sizes of the firmware softmax (see ``docs/firmware_softmax.md``).

    in_bits, in_frac:           signed input (logit) grid, q in [-2^(in_bits-1), 2^(in_bits-1)-1], value q*2^-in_frac
    exp_table_bits, exp_shift:  exp table of 2^exp_table_bits entries indexed by min(d >> exp_shift, last)
    exp_frac:                   exp entries are unsigned with exp_frac fraction bits (entry 0 = 2^exp_frac = 1.0)
    inv_table_bits, inv_shift:  inverse table of 2^inv_table_bits entries indexed by min(S >> inv_shift, last)
    inv_frac, inv_bits:         inverse entries unsigned, inv_bits wide, inv_frac fraction bits
    out_bits, out_frac:         unsigned output grid, o in [0, 2^out_bits - 1], value o*2^-out_frac
    rounding:                   'floor' | 'half_up' | 'half_even', rounding of e*r onto the output grid
    """

    in_bits: int
    in_frac: int
    exp_table_bits: int
    exp_shift: int
    exp_frac: int
    inv_table_bits: int
    inv_shift: int
    inv_frac: int
    inv_bits: int
    out_bits: int
    out_frac: int
    rounding: str = "floor"

    # ------------------------------------------------------------ validation
    def __post_init__(self):
        for name, (lo, hi) in _FIELD_RANGES.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ConfigError(f"softmax spec field {name!r} must be an integer, got {v!r}")
            if not lo <= int(v) <= hi:
                raise ConfigError(f"softmax spec field {name!r} = {v} outside the supported range [{lo}, {hi}]")
            object.__setattr__(self, name, int(v))
        if self.rounding not in ROUNDING_MODES:
            raise ConfigError(f"softmax spec field 'rounding' = {self.rounding!r}; choose one of {ROUNDING_MODES}")
        if self.exp_shift > self.in_bits:
            raise ConfigError(f"softmax spec field 'exp_shift' = {self.exp_shift} exceeds in_bits = {self.in_bits}")
        if self.product_shift < 0:
            raise ConfigError(
                f"softmax spec field 'out_frac' = {self.out_frac} exceeds exp_frac + inv_frac = "
                f"{self.exp_frac + self.inv_frac}: the output would need more fraction bits than the product has"
            )
        if self.exp_frac + 1 + self.inv_bits > 62:
            raise ConfigError(
                f"softmax spec fields 'exp_frac' + 'inv_bits' = {self.exp_frac + self.inv_bits} too wide for int64"
            )
        if self.inv_frac + self.exp_frac + 2 > 62:
            raise ConfigError(f"softmax spec fields 'inv_frac' + 'exp_frac' too wide for int64")

    # ------------------------------------------------------------ derived
    @property
    def product_shift(self) -> int:
        """Right shift from the product e*r (exp_frac + inv_frac fraction bits) to the output grid."""
        return self.exp_frac + self.inv_frac - self.out_frac

    @property
    def in_min(self) -> int:
        return -(1 << (self.in_bits - 1))

    @property
    def in_max(self) -> int:
        return (1 << (self.in_bits - 1)) - 1

    @property
    def out_max(self) -> int:
        return (1 << self.out_bits) - 1

    @property
    def in_scale(self) -> float:
        return 2.0 ** -self.in_frac

    @property
    def out_scale(self) -> float:
        return 2.0 ** -self.out_frac

    @property
    def exp_table_saturates(self) -> bool:
        """True when the last exp entry is 0, so any d beyond the table gives exactly 0 (an additive
        large-negative mask then reproduces dropping a key exactly)."""
        return int(self.exp_table()[-1]) == 0

    @property
    def exp_table_covers_input(self) -> bool:
        """True when every d in [0, 2^in_bits - 1] indexes the table without clamping, or clamps onto an entry 0."""
        full = ((1 << self.in_bits) - 1) >> self.exp_shift
        return full < (1 << self.exp_table_bits) or self.exp_table_saturates

    def sum_bits(self, n: int) -> int:
        """Width of the exact unsigned accumulator S for a row of n keys."""
        return (int(n) << self.exp_frac).bit_length()

    # ------------------------------------------------------------ tables
    def exp_table(self) -> np.ndarray:
        """EXP[t] = round_half_up(2^exp_frac * exp(-t * 2^exp_shift * 2^-in_frac)), numpy float64, int64 result."""
        t = np.arange(1 << self.exp_table_bits, dtype=np.float64)
        x = np.exp(-t * 2.0 ** (self.exp_shift - self.in_frac)) * 2.0**self.exp_frac
        return np.floor(x + 0.5).astype(np.int64)

    def inv_table(self) -> np.ndarray:
        """INV[t] = min(2^inv_bits - 1, round_half_up(2^(inv_frac+exp_frac) / max((t+0.5)*2^inv_shift, 2^exp_frac))).

        Computed exactly in integers: with D = 2*denominator = max((2t+1) << inv_shift, 2 << exp_frac) and
        N = 2^(inv_frac+exp_frac+1), round_half_up(N / D) = floor((2N + D) / (2D)).
        """
        t = np.arange(1 << self.inv_table_bits, dtype=np.int64)
        d = np.maximum((2 * t + 1) << self.inv_shift, np.int64(2) << self.exp_frac)
        n = np.int64(1) << (self.inv_frac + self.exp_frac + 1)
        r = (2 * n + d) // (2 * d)
        return np.minimum(r, (np.int64(1) << self.inv_bits) - 1).astype(np.int64)

    def table_digest(self) -> str:
        """sha256 of both tables (int64 little endian), for manifests: firmware tables must carry the same digest."""
        h = hashlib.sha256()
        h.update(self.exp_table().astype("<i8").tobytes())
        h.update(self.inv_table().astype("<i8").tobytes())
        return h.hexdigest()

    # ------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SoftmaxSpec":
        if not isinstance(d, dict):
            raise ConfigError(f"softmax spec must be a mapping, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ConfigError(f"unknown softmax spec field(s) {unknown}; known: {names}")
        missing = [n for n in names if n not in d and n != "rounding"]
        if missing:
            raise ConfigError(f"softmax spec is missing field(s) {missing}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str | bytes) -> "SoftmaxSpec":
        try:
            d = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"softmax spec is not valid JSON: {exc}") from exc
        return cls.from_dict(d)

    # ------------------------------------------------------------ defaults
    @classmethod
    def default_for(
        cls,
        in_bits: int,
        in_frac: int,
        n: int,
        out_bits: int = 8,
        rounding: str = "floor",
        *,
        max_table_bits: int = 12,
        max_inv_table_bits: int = 14,
        exp_guard_bits: int = 2,
    ) -> "SoftmaxSpec":
        """Tables that index the full input range and cover the sum range [1, n].

        * exp_frac = out_bits + exp_guard_bits.
        * The exp table is the smallest power of two whose last entry is already 0 (every larger d clamps onto 0:
          lossless, and top-k / masking by a large negative logit is exact), capped at in_bits (then no clamping
          at all) and at max_table_bits (then exp_shift > 0 drops low bits of d).
        * The inverse table spans S in [0, n * 2^exp_frac] with 2^(ceil(log2 n) + out_bits) entries (at most
          2^max_inv_table_bits), so at the smallest sum S = 1.0 the index still has 2^out_bits steps per unit and the
          relative error of 1/S stays near half an output LSB.
        * inv_frac = out_bits + ceil(log2 n) + 2, so the smallest weight 1/n keeps out_bits + 2 significant bits;
          inv_bits = inv_frac + 1 holds 1.0 exactly.
        * The output is ufixed<out_bits, 0>: out_frac = out_bits (a weight of 1.0 saturates to 1 - 2^-out_bits).
        """
        for name, v in (("in_bits", in_bits), ("n", n), ("out_bits", out_bits), ("max_table_bits", max_table_bits)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"softmax default_for: {name!r} must be a positive integer, got {v!r}")
        exp_frac = int(out_bits) + int(exp_guard_bits)
        # smallest table whose last entry rounds to 0 (d >= t_zero gives exp < 2^-(exp_frac+1))
        t_zero = math.ceil((exp_frac + 1) * math.log(2.0) * 2.0**in_frac)
        need = max(1, int(t_zero).bit_length())  # 2^need - 1 >= t_zero
        etb = min(int(in_bits), need, int(max_table_bits))
        full_d = (1 << int(in_bits)) - 1  # largest max-subtracted difference
        exp_shift = 0
        while (((1 << etb) - 1) << exp_shift) < t_zero and (full_d >> exp_shift) >= (1 << etb):
            exp_shift += 1
        total = (int(n) << exp_frac).bit_length()
        itb = min(int(max_inv_table_bits), total, math.ceil(math.log2(max(int(n), 1))) + int(out_bits))
        itb = max(itb, 1)
        inv_frac = int(out_bits) + math.ceil(math.log2(max(int(n), 1))) + 2
        return cls(
            in_bits=int(in_bits),
            in_frac=int(in_frac),
            exp_table_bits=etb,
            exp_shift=exp_shift,
            exp_frac=exp_frac,
            inv_table_bits=itb,
            inv_shift=total - itb,
            inv_frac=inv_frac,
            inv_bits=inv_frac + 1,
            out_bits=int(out_bits),
            out_frac=int(out_bits),
            rounding=rounding,
        )


# ---------------------------------------------------------------------------------------------- numpy reference
def _as_int_logits(q, spec: SoftmaxSpec) -> np.ndarray:
    q = np.asarray(q)
    if not np.issubdtype(q.dtype, np.integer):
        if not np.issubdtype(q.dtype, np.floating) or not np.all(np.isfinite(q)) or np.any(q != np.round(q)):
            raise DataError("softmax_int expects integer logits (value * 2^in_frac); got non-integer values")
    q = q.astype(np.int64)
    if q.size and (q.min() < spec.in_min or q.max() > spec.in_max):
        raise DataError(
            f"softmax_int logits outside the in_bits={spec.in_bits} range [{spec.in_min}, {spec.in_max}]: "
            f"min {q.min()}, max {q.max()}"
        )
    return q


def topk_keep_np(q: np.ndarray, keep: np.ndarray, k: int) -> np.ndarray:
    """Among keys with keep=True, keep i iff #{kept j: q_j > q_i} + #{kept j < i: q_j == q_i} < k."""
    n = q.shape[-1]
    qi, qj = q[..., :, None], q[..., None, :]
    lower = np.arange(n)[None, :] < np.arange(n)[:, None]  # [i, j] = j < i
    beats = ((qj > qi) | ((qj == qi) & lower)) & keep[..., None, :]
    return keep & (beats.sum(-1) < k)


def softmax_int(q, mask=None, topk: int = 0, spec: SoftmaxSpec | None = None) -> np.ndarray:
    """Integer firmware softmax over the last axis. Returns int64 o with value o * 2^-out_frac.

    q:     integer logits (..., N) on the spec's input grid (value q * 2^-in_frac)
    mask:  key mask broadcastable to q with the key axis last (nonzero = real key), or None
    topk:  keep only the topk largest kept logits per row (0 = off; ties go to the lower index)
    """
    if spec is None:
        raise ConfigError("softmax_int needs a SoftmaxSpec")
    topk = int(topk)
    if topk < 0:
        raise ConfigError(f"softmax topk must be >= 0, got {topk}")
    q = _as_int_logits(q, spec)
    keep = np.ones(q.shape, dtype=bool) if mask is None else np.broadcast_to(np.asarray(mask) != 0, q.shape)
    if 0 < topk < q.shape[-1]:
        keep = topk_keep_np(q, keep, topk)
    exp_t, inv_t = spec.exp_table(), spec.inv_table()
    m = np.where(keep, q, np.int64(spec.in_min)).max(axis=-1, keepdims=True)
    d = m - q
    idx = np.clip(d >> spec.exp_shift, 0, len(exp_t) - 1)
    e = np.where(keep, exp_t[idx], 0)
    s = e.sum(axis=-1, keepdims=True)
    r = inv_t[np.minimum(s >> spec.inv_shift, len(inv_t) - 1)]
    o = _round_shift(e * r, spec.product_shift, spec.rounding, np)
    return np.minimum(o, spec.out_max).astype(np.int64)


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
    o = _round_shift(e * r, spec.product_shift, spec.rounding, torch)
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
