"""Exact fixed-point types for the converter.

A :class:`FixedType` is (signed, width, frac): value = integer * 2^-frac, integer in the signed/unsigned ``width``
bit range. Result types of Add / Mul / MatMul are derived from integer *bounds* so they are exact by construction
and never wider than the textbook rule (input widths + ceil(log2 contraction length)). Only Quant layers round
(rounding mode of the QONNX node, mapped to ap_fixed by the contract's one rounding table
:data:`l1tagger.contract.quant.ROUNDING`) and saturate (``AP_SAT``, or ``AP_SAT_SYM`` for narrow signed ranges).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from l1tagger.errors import ConversionError


@dataclass(frozen=True)
class FixedType:
    """signed/unsigned fixed-point type; ``lo``/``hi`` optionally tighten the integer range (used for bounds)."""

    signed: bool
    width: int
    frac: int
    lo: int | None = None
    hi: int | None = None

    @property
    def integer(self) -> int:
        return self.width - self.frac

    @property
    def int_min(self) -> int:
        if self.lo is not None:
            return self.lo
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def int_max(self) -> int:
        if self.hi is not None:
            return self.hi
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    def bounds_at(self, frac: int) -> tuple[int, int]:
        """Integer bounds of this type's values expressed with ``frac`` fraction bits (frac >= self.frac)."""
        s = frac - self.frac
        if s < 0:
            raise ValueError("bounds_at needs frac >= self.frac")
        return self.int_min << s, self.int_max << s

    def cpp(self, rounding: str = "AP_TRN", saturation: str = "AP_WRAP") -> str:
        base = "ap_fixed" if self.signed else "ap_ufixed"
        if rounding == "AP_TRN" and saturation == "AP_WRAP":
            return f"{base}<{self.width},{self.integer}>"
        return f"{base}<{self.width},{self.integer},{rounding},{saturation}>"

    def describe(self) -> str:
        return f"{'s' if self.signed else 'u'}{self.width}.{self.frac}"


def from_bounds(lo: int, hi: int, frac: int) -> FixedType:
    """Smallest type holding every integer in [lo, hi] (at ``frac`` fraction bits)."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError("empty bounds")
    if lo < 0:
        w = 1
        while not (-(1 << (w - 1)) <= lo and hi <= (1 << (w - 1)) - 1):
            w += 1
        return FixedType(True, w, frac, lo, hi)
    w = max(1, int(hi).bit_length())
    return FixedType(False, w, frac, lo, hi)


def plain(t: FixedType) -> FixedType:
    """The same type without the tightened bounds (for C++ emission and equality)."""
    return FixedType(t.signed, t.width, t.frac)


def add_type(a: FixedType, b: FixedType) -> FixedType:
    f = max(a.frac, b.frac)
    alo, ahi = a.bounds_at(f)
    blo, bhi = b.bounds_at(f)
    return from_bounds(alo + blo, ahi + bhi, f)


def mul_type(a: FixedType, b: FixedType, n_terms: int = 1) -> FixedType:
    """Exact type of a product, or of a sum of ``n_terms`` such products (matmul with contraction n_terms)."""
    corners = [x * y for x in (a.int_min, a.int_max) for y in (b.int_min, b.int_max)]
    lo, hi = min(corners), max(corners)
    return from_bounds(lo * n_terms, hi * n_terms, a.frac + b.frac)


def union_type(a: FixedType, b: FixedType) -> FixedType:
    f = max(a.frac, b.frac)
    alo, ahi = a.bounds_at(f)
    blo, bhi = b.bounds_at(f)
    return from_bounds(min(alo, blo), max(ahi, bhi), f)


def const_type(values: np.ndarray, name: str, max_frac: int = 40) -> tuple[FixedType, np.ndarray]:
    """(tight type, integer array) of a constant tensor that lies on a power-of-two grid."""
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ConversionError(f"constant {name!r} has non-finite values")
    for frac in range(-16, max_frac + 1):
        q = v * 2.0**frac
        if np.array_equal(q, np.round(q)):
            qi = q.astype(np.int64)
            lo = int(qi.min()) if qi.size else 0
            hi = int(qi.max()) if qi.size else 0
            return from_bounds(min(lo, 0), max(hi, 0), frac), qi
    raise ConversionError(f"constant {name!r} is not on a power-of-two grid with <= {max_frac} fraction bits")


def quant_type(bits: int, frac: int, signed: bool, narrow: bool) -> FixedType:
    if signed:
        lo = -(1 << (bits - 1)) + (1 if narrow else 0)
        return FixedType(True, bits, frac, lo, (1 << (bits - 1)) - 1)
    if narrow:
        raise ConversionError("narrow unsigned Quant is not supported")
    return FixedType(False, bits, frac, 0, (1 << bits) - 1)


def rounding_mid_type(src: FixedType, frac: int) -> FixedType:
    """Wide type on the output grid that holds any rounded input value without wrap-around."""
    integer = src.integer + 2  # sign bit + rounding carry
    width = integer + frac
    if width < 2:
        integer += 2 - width
        width = 2
    return FixedType(True, width, frac)


def clog2(n: int) -> int:
    return max(0, math.ceil(math.log2(max(1, n))))
