"""Quant-node decoding and the one rounding table (qonnx <-> ap_fixed <-> da4ml <-> numpy).

A cleaned l1tagger graph quantizes every tensor with a qonnx ``Quant(x, scale, zero_point, bit_width)`` node whose
scale is a power of two and whose zero point is 0. :func:`decode_quant` turns such a node (attributes + the three
constant inputs) into a :class:`QuantSpec`; every walker (hls4ml converter, da4ml lowering, integer reference,
estimates) decodes Quant nodes with it, and each keeps its own arithmetic.

:data:`ROUNDING` is the single rounding table. Per qonnx ``rounding_mode`` it gives

* ``numpy``: the rounding function with qonnx's semantics (``qonnx.custom_op.general.quant.resolve_rounding_mode``),
  used to fold constants and as the definition the other columns are tested against;
* ``ap_fixed``: the ap_fixed quantisation mode that reproduces it for inputs of either sign, or None when ap_fixed
  has none (the hls4ml converter then refuses a Quant that actually rounds);
* ``da4ml``: the da4ml round mode that reproduces it for either sign, or None; ``da4ml_nonneg``: the one that
  reproduces it when the quantizer's input is provably non-negative (da4ml rounds only by truncation ``TRN`` or
  ties-toward-plus-infinity ``RND``);
* ``note``: why.

ap_fixed semantics (``ap_fixed_base.h``, ``quantization_adjust(qb, r, s)``: qb = first dropped bit, r = any lower
dropped bit, s = the source is negative): AP_RND adds qb (ties toward +inf); AP_RND_INF adds qb & (!s | r) (ties
away from zero); AP_RND_ZERO adds qb & (s | r) (ties toward zero); AP_RND_MIN_INF adds qb & r (ties toward -inf);
AP_RND_CONV ties to even; AP_TRN floors; AP_TRN_ZERO truncates toward zero. So qonnx ``HALF_UP`` (ties away from
zero) is ``AP_RND_INF``, not ``AP_RND``, which differs on every negative tie.

:func:`constant_bits` and :func:`csd_digits` say what a quantized constant really costs (the bits it uses, its
nonzero canonical-signed-digit count); the HGQ loss, the export's ``constant_widths`` and the report's estimate all
count constants with them.

Imports numpy and onnx only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from onnx import helper

from l1tagger.errors import ConversionError, DataError, L1TaggerError

QONNX_DOMAIN = "qonnx.custom_op.general"

#: widest quantizer a walker accepts (every integer stays exact in float64 and int64)
MAX_BITS = 32


def _half_up(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _half_down(x):
    return np.sign(x) * np.ceil(np.abs(x) - 0.5)


def _up(x):
    return np.sign(x) * np.ceil(np.abs(x))


@dataclass(frozen=True)
class Rounding:
    """One qonnx rounding mode and how each arithmetic back end reproduces it (None: it cannot)."""

    name: str
    numpy: Callable[[np.ndarray], np.ndarray]
    ap_fixed: str | None
    da4ml: str | None
    da4ml_nonneg: str | None
    note: str

    @property
    def hls4ml(self) -> str | None:
        """hls4ml ``RoundingMode`` name of the ap_fixed mode (``AP_RND_INF`` -> ``RND_INF``)."""
        return None if self.ap_fixed is None else self.ap_fixed[len("AP_"):]


#: qonnx rounding_mode -> Rounding (the one table; tests compare every column with the real tool)
ROUNDING: dict[str, Rounding] = {r.name: r for r in (
    Rounding("ROUND", np.round, "AP_RND_CONV", None, None,
             "ties to even (numpy round); da4ml has no ties-to-even rounding"),
    Rounding("HALF_EVEN", np.round, "AP_RND_CONV", None, None, "alias of ROUND"),
    Rounding("FLOOR", np.floor, "AP_TRN", "TRN", "TRN", "toward -inf (truncation of two's complement)"),
    Rounding("CEIL", np.ceil, None, None, None, "toward +inf; ap_fixed and da4ml have no ceiling mode"),
    Rounding("UP", _up, None, None, None, "away from zero; ap_fixed and da4ml have no such mode"),
    Rounding("DOWN", np.fix, "AP_TRN_ZERO", None, "TRN", "toward zero; on non-negative values it is floor"),
    Rounding("HALF_UP", _half_up, "AP_RND_INF", None, "RND",
             "ties away from zero = sign(x)*floor(|x|+0.5); ap_fixed AP_RND and da4ml RND round ties toward +inf, "
             "which is the same only on non-negative values"),
    Rounding("HALF_DOWN", _half_down, "AP_RND_ZERO", None, None,
             "ties toward zero = sign(x)*ceil(|x|-0.5); da4ml has no such mode"),
)}


@dataclass(frozen=True)
class QuantSpec:
    """A decoded Quant node: integer q in [int_min, int_max], value q * 2^-frac (scale 2^-frac, zero point 0)."""

    signed: bool
    narrow: bool
    bits: int
    frac: int
    rounding: str = "ROUND"
    zero_point: int = 0

    @property
    def scale(self) -> float:
        return 2.0 ** -self.frac

    @property
    def int_min(self) -> int:
        if self.signed:
            return -(1 << (self.bits - 1)) + int(self.narrow)
        return 0

    @property
    def int_max(self) -> int:
        if self.signed:
            return (1 << (self.bits - 1)) - 1
        return (1 << self.bits) - 1 - int(self.narrow)

    @property
    def mode(self) -> Rounding:
        return ROUNDING[self.rounding]

    def apply(self, x) -> np.ndarray:
        """qonnx ``quant()`` in float64: scale exactly by 2^frac, saturate, round, scale back (NaN stays NaN)."""
        y = np.asarray(x, np.float64) * 2.0**self.frac
        y = self.mode.numpy(np.clip(y, self.int_min, self.int_max))
        return y * 2.0 ** -self.frac


def scalar(value, node, what: str, error: type[L1TaggerError]) -> float:
    """The single float of a per-tensor Quant input; ``error`` naming the node when it is per-channel."""
    a = np.asarray(value, dtype=np.float64).ravel()
    if a.size != 1:
        raise error(f"Quant node {node.name!r}: {what} has {a.size} values; only per-tensor quantizers are supported")
    return float(a[0])


def pow2_frac(scale: float, node, error: type[L1TaggerError] = ConversionError) -> int:
    """frac with scale == 2^-frac exactly; ``error`` naming the node otherwise."""
    if not (math.isfinite(scale) and scale > 0) or math.frexp(scale)[0] != 0.5:
        raise error(f"Quant node {node.name!r}: scale {scale!r} is not a power of two")
    return 1 - math.frexp(scale)[1]


def attribute(node, name: str, default=None):
    """A node attribute's value (bytes decoded to str), or ``default``."""
    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def decode_quant(node, scale, zero_point, bits, error: type[L1TaggerError] = ConversionError) -> QuantSpec:
    """:class:`QuantSpec` of a qonnx Quant node from its attributes and its three constant inputs' values.

    The walker fetches the constants its own way (and fails, naming the node, when they are not constant);
    everything else is checked here, with ``error`` (the walker's error class) naming the node and the field.
    """
    z = scalar(zero_point, node, "zero point", error)
    b = scalar(bits, node, "bit width", error)
    frac = pow2_frac(scalar(scale, node, "scale", error), node, error)
    if z != 0.0:
        raise error(f"Quant node {node.name!r}: zero point {z} is not 0")
    if b != round(b) or not 1 <= b <= MAX_BITS:
        raise error(f"Quant node {node.name!r}: bit width {b} is not an integer in [1, {MAX_BITS}]")
    rounding = str(attribute(node, "rounding_mode", "ROUND")).upper()
    if rounding not in ROUNDING:
        raise error(f"Quant node {node.name!r}: rounding_mode {rounding!r} is not a qonnx rounding mode "
                    f"({sorted(ROUNDING)})")
    signed, narrow = bool(attribute(node, "signed", 1)), bool(attribute(node, "narrow", 0))
    if signed and b == 1:
        raise error(f"Quant node {node.name!r}: 1-bit signed (bipolar) quantizers are not supported")
    if narrow and not signed and b == 1:
        raise error(f"Quant node {node.name!r}: a 1-bit narrow unsigned quantizer holds no value but 0")
    return QuantSpec(signed=signed, narrow=narrow, bits=int(b), frac=frac, rounding=rounding)


# ------------------------------------------------------------------------------------------ what a constant costs
def _integers(k, what: str) -> np.ndarray:
    """|k| as int64 (DataError naming ``what`` when an entry is not an integer below 2^53)."""
    a = np.abs(np.asarray(k, dtype=np.float64))
    if np.any(a != np.round(a)) or np.any(a >= 2.0 ** 53):
        raise DataError(f"{what}: constants must be integers below 2^53 on their grid")
    return a.astype(np.int64)


def constant_bits(k) -> np.ndarray:
    """Bits each integer constant actually uses: 0 for 0, else the span of its set bits (|k| = m * 2^e, m odd ->
    bit_length(m)). ``k``: integers (any integer or integral float array; |k| < 2^53). The sign is not counted.

    This is HGQ's width of a constant operand: 0.75 = 0b0.11 on the grid 2^-2 is k = 3 -> 2 bits; 4 = 0b100 -> 1 bit
    (a shift); a pruned (zero) weight costs nothing."""
    n = _integers(k, "constant_bits")
    a = n.astype(np.float64)
    low = n & -n  # lowest set bit (0 for 0)
    out = np.zeros(n.shape, dtype=np.int64)
    nz = n > 0
    msb = np.frexp(a[nz])[1] - 1  # a = m * 2^e exactly, m in [0.5, 1) -> floor(log2 a) = e - 1
    lsb = np.frexp(low[nz].astype(np.float64))[1] - 1
    out[nz] = msb - lsb + 1
    return out


def _popcount(n: np.ndarray) -> np.ndarray:
    out = np.zeros(n.shape, dtype=np.int64)
    n = n.copy()
    while np.any(n):
        out += n & 1
        n >>= 1
    return out


def csd_digits(k) -> np.ndarray:
    """Nonzero digits of each integer constant in canonical signed-digit form (the non-adjacent form: digits in
    {-1, 0, 1}, no two adjacent nonzero; the fewest nonzero digits of any signed-digit form): the number of shifted
    copies of the input a shift-and-add multiplier by this constant sums. 0 -> 0, 4 -> 1, 7 = 8 - 1 -> 2,
    11 = 16 - 4 - 1 -> 3. The sign is free (a subtraction instead of an addition). ``k`` as in :func:`constant_bits`.

    popcount(n XOR 3n) is the weight of the non-adjacent form of n (the carries of 3n = 2n + n mark its digits)."""
    n = _integers(k, "csd_digits")
    return _popcount(n ^ (3 * n))
