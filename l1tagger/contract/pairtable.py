"""The interaction bias U from tables of the quantized pair features: the ``L1PairTable`` op (docs/interaction.md).

    U[..., h] = sum_f T[f, h, idx_f],   idx_f = clip(floor((x_f - lo_f) * 2^-e_f), 0, 2^bits - 1)

x (..., F) are pair features (F = 4: ln kT, ln z, ln Delta, ln m^2) on a fixed-point grid, lo_f is the lower edge of
feature f's index range (a multiple of its bin width 2^e_f), T (F, H, 2^bits) the per-feature, per-head tables
(trained, quantized by the recipe: the table input of the node is a ``Quant`` of an initializer). The sum is exact on
the table's grid. Torch-free: the torch module (``l1tagger.models.tagger.PairTable``), the qonnx custom op, the
integer reference, the converter, the RTL lowering and the estimate all take the semantics from here.

Node: ``L1PairTable(pair, table) -> u`` in the ``l1tagger.export.custom_ops`` domain, one attribute ``spec`` (JSON of
:class:`PairTableSpec`); any other attribute, a table of another shape or a pair input whose last axis is not F is
refused (ConfigError naming the node and the attribute / shape).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from l1tagger.errors import ConfigError, DataError
from l1tagger.utils import dataclass_io

#: the op type (domain ``l1tagger.contract.softmax.ONNX_DOMAIN``)
PAIR_TABLE_OP = "L1PairTable"
#: attributes of an L1PairTable node
NODE_ATTRIBUTES = ("spec",)
SPEC_KEYS = ("bits", "n_heads", "lo", "exp")
#: the index width range (bits): 1..10 (a table of 2..1024 entries per feature and head)
BITS_RANGE = (1, 10)
#: bin widths 2^e with e in this range
EXP_RANGE = (-12, 12)


@dataclass(frozen=True)
class PairTableSpec:
    """bits: index width (2^bits entries per table); n_heads: H; lo: per feature, the lower edge of the index range
    (float, a multiple of 2^exp); exp: per feature, the bin width is 2^exp."""

    bits: int
    n_heads: int
    lo: tuple[float, ...]
    exp: tuple[int, ...]

    def __post_init__(self):
        for name, (lo, hi) in (("bits", BITS_RANGE), ("n_heads", (1, 64))):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
                raise ConfigError(f"pair table spec field {name!r} = {v!r}: must be an integer in [{lo}, {hi}]")
            object.__setattr__(self, name, int(v))
        lo, ex = self.lo, self.exp
        if not isinstance(lo, (tuple, list)) or not isinstance(ex, (tuple, list)) or not lo or len(lo) != len(ex):
            raise ConfigError(f"pair table spec fields 'lo' and 'exp' must be non-empty lists of equal length, got "
                              f"{lo!r} and {ex!r}")
        exps = []
        for f, e in enumerate(ex):
            lo_e, hi_e = EXP_RANGE
            if isinstance(e, bool) or not isinstance(e, (int, np.integer)) or not lo_e <= int(e) <= hi_e:
                raise ConfigError(f"pair table spec field 'exp' index {f} = {e!r}: must be an integer in "
                                  f"[{EXP_RANGE[0]}, {EXP_RANGE[1]}]")
            exps.append(int(e))
        los = []
        for f, (v, e) in enumerate(zip(lo, exps)):
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"pair table spec field 'lo' index {f} = {v!r}: not a number") from None
            if not math.isfinite(v) or v * 2.0**-e != round(v * 2.0**-e) or abs(v) > 2.0**20:
                raise ConfigError(f"pair table spec field 'lo' index {f} = {v!r}: must be a finite multiple of the "
                                  f"bin width 2^{e}")
            los.append(v)
        object.__setattr__(self, "lo", tuple(los))
        object.__setattr__(self, "exp", tuple(exps))

    @property
    def n_features(self) -> int:
        return len(self.lo)

    @property
    def n_entries(self) -> int:
        return 1 << self.bits

    @property
    def table_shape(self) -> tuple[int, int, int]:
        return (self.n_features, self.n_heads, self.n_entries)

    def to_dict(self) -> dict[str, Any]:
        return {"bits": self.bits, "n_heads": self.n_heads, "lo": list(self.lo), "exp": list(self.exp)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Mapping, path: str = "") -> "PairTableSpec":
        """Strict (``l1tagger.utils.dataclass_io.from_dict``: unknown, missing and mistyped fields name the dotted
        field, ``path`` being where the spec sits in a larger document); ranges checked on construction."""
        return dataclass_io.from_dict(cls, d, path)

    @classmethod
    def from_json(cls, text: str | bytes) -> "PairTableSpec":
        return cls.from_dict(dataclass_io.loads_json(text, "pair table spec"))


# ------------------------------------------------------------------------------------------------ semantics
def indices(x, spec: PairTableSpec, xp=np):
    """idx (..., F) int64 of pair features ``x`` (..., F): float values (numpy float64 or torch) on a dyadic grid;
    exact for dyadic inputs (one subtraction of a dyadic constant, a power-of-two scaling, a floor)."""
    lo = xp.asarray(spec.lo, dtype=x.dtype) if xp is np else x.new_tensor(spec.lo)
    scale = xp.asarray([2.0**-e for e in spec.exp], dtype=x.dtype) if xp is np else \
        x.new_tensor([2.0**-e for e in spec.exp])
    idx = xp.floor((x - lo) * scale)
    idx = xp.clip(idx, 0, spec.n_entries - 1)
    return idx.astype(np.int64) if xp is np else idx.long()


def indices_int(xi: np.ndarray, frac: int, spec: PairTableSpec) -> np.ndarray:
    """idx (..., F) from the integers ``xi`` of pair features on the grid 2^-frac (value xi * 2^-frac), in integers:
    d = xi - lo 2^frac, idx = clip(d >> (frac + e)) (a left shift when frac + e < 0). ConfigError when a lower edge
    is not on the input grid."""
    xi = np.asarray(xi, dtype=np.int64)
    out = np.empty(xi.shape, np.int64)
    for f, (lo, e) in enumerate(zip(spec.lo, spec.exp)):
        lo_i = lo * 2.0**frac
        if lo_i != round(lo_i):
            raise ConfigError(f"pair table: lower edge lo[{f}] = {lo} is not on the input grid 2^-{frac}")
        d = xi[..., f] - np.int64(round(lo_i))
        s = frac + e
        q = d >> s if s >= 0 else d << (-s)
        out[..., f] = np.clip(q, 0, spec.n_entries - 1)
    return out


def lookup_sum(idx: np.ndarray, table: np.ndarray, spec: PairTableSpec) -> np.ndarray:
    """U (..., H) = sum_f table[f, h, idx_f] for idx (..., F) and a table (F, H, 2^bits) of any numpy dtype."""
    table = np.asarray(table)
    out = 0
    for f in range(spec.n_features):
        out = out + np.moveaxis(table[f][:, idx[..., f]], 0, -1)  # (..., H)
    return out


def check_shapes(pair_shape, table_shape, spec: PairTableSpec, where: str) -> None:
    """ConfigError naming ``where`` when the pair input's last axis is not F or the table is not (F, H, 2^bits)."""
    if pair_shape is not None and len(pair_shape) and int(pair_shape[-1]) != spec.n_features:
        raise ConfigError(f"{where}: pair input shape {tuple(pair_shape)} has {pair_shape[-1]} features on its last "
                          f"axis, the spec has {spec.n_features}")
    if table_shape is not None and tuple(int(s) for s in table_shape) != spec.table_shape:
        raise ConfigError(f"{where}: table shape {tuple(int(s) for s in table_shape)}, the spec needs "
                          f"(features, heads, 2^bits) = {spec.table_shape}")


def output_shape(pair_shape, spec: PairTableSpec) -> tuple[int, ...]:
    return tuple(int(s) for s in pair_shape[:-1]) + (spec.n_heads,)


def pairtable_np(x: np.ndarray, table: np.ndarray, spec: PairTableSpec, where: str = "L1PairTable") -> np.ndarray:
    """The reference on float values: U (..., H) float64 (exact for dyadic inputs and tables)."""
    x = np.asarray(x, dtype=np.float64)
    table = np.asarray(table, dtype=np.float64)
    check_shapes(x.shape, table.shape, spec, where)
    if np.isnan(x).any():
        idx = tuple(int(i) for i in np.argwhere(np.isnan(x))[0])
        raise DataError(f"{where}: pair input holds NaN at index {idx}")
    return lookup_sum(indices(x, spec), table, spec)


# ------------------------------------------------------------------------------------------------ exported node
def spec_of_node(node) -> PairTableSpec:
    """The spec of an L1PairTable NodeProto; ConfigError naming the node and an unknown / missing attribute."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    unknown = sorted(set(attrs) - set(NODE_ATTRIBUTES))
    if unknown:
        raise ConfigError(f"{node.op_type} node {node.name!r}: unknown attribute(s) {unknown}; known: "
                          f"{list(NODE_ATTRIBUTES)}")
    if "spec" not in attrs:
        raise ConfigError(f"{node.op_type} node {node.name!r} has no 'spec' attribute")
    raw = attrs["spec"]
    try:
        return PairTableSpec.from_json(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except ConfigError as exc:
        raise ConfigError(f"{node.op_type} node {node.name!r}: {exc}") from None


def calibrate_range(values: np.ndarray, bits: int, quantile: float = 0.005, min_exp: int = -4) -> tuple[float, int]:
    """(lo, exp) covering the [quantile, 1 - quantile] range of ``values`` with 2^bits bins of width 2^exp
    (exp >= min_exp), lo a multiple of 2^exp: the index range the torch module fixes at its first batch."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 0
    a, b = float(np.quantile(v, quantile)), float(np.quantile(v, 1 - quantile))
    width = max(b - a, 2.0**min_exp)
    e = max(min_exp, math.ceil(math.log2(width / (1 << bits))))
    e = min(e, EXP_RANGE[1])
    lo = math.floor(a * 2.0**-e) * 2.0**e
    if lo + (1 << bits) * 2.0**e < b:  # flooring lo may leave the top out: one bin wider
        e = min(e + 1, EXP_RANGE[1])
        lo = math.floor(a * 2.0**-e) * 2.0**e
    return lo, e
