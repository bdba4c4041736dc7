"""The firmware softmax, torch-free: :class:`SoftmaxSpec`, its tables and the numpy integer reference.

The algorithm is specified in ``docs/firmware_softmax.md``; this module is its executable form and the one place
every walker takes it from (QAT emulation ``l1tagger.qat.softmax``, qonnx custom op, integer reference, hls4ml
converter, da4ml lowering, estimates):

* :class:`SoftmaxSpec` - every type and table size, validated, serialisable (``to_dict``/``from_dict``/``to_json``),
  with the table *contents* as a defined function of the spec (:meth:`SoftmaxSpec.exp_table`,
  :meth:`SoftmaxSpec.inv_table`), so no consumer ever calls ``expf`` itself.
* :func:`softmax_int` - the numpy int64 reference (vectorised over any leading axes).
* :func:`round_shift` - the product rounding, written once for numpy arrays and torch tensors alike.
* :func:`spec_of_node` - (spec, topk) of an exported ``FirmwareSoftmax`` node.

All quantities are integers; "value" = integer * 2**-frac. Imports numpy and onnx only (never torch or qonnx).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from l1tagger.errors import ConfigError, DataError
from l1tagger.utils import dataclass_io

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


#: spec rounding -> the qonnx rounding mode with the same result on the (non-negative) products
#: (``l1tagger.contract.quant.ROUNDING`` says how ap_fixed and da4ml reproduce each)
QONNX_ROUNDING = {"floor": "FLOOR", "half_up": "HALF_UP", "half_even": "HALF_EVEN"}


def round_shift(p, shift: int, rounding: str):
    """Round the non-negative integers ``p`` right by ``shift`` bits with a spec rounding mode.

    ``p`` is a numpy int64 array/scalar or a torch int64 tensor: only operators common to both are used, so the
    QAT emulation and the numpy reference share this one definition.
    """
    if rounding not in ROUNDING_MODES:
        raise ConfigError(f"softmax rounding {rounding!r}; choose one of {ROUNDING_MODES}")
    if shift == 0:
        return p
    q = p >> shift
    if rounding == "floor":
        return q
    half = 1 << (shift - 1)
    rem = p & ((1 << shift) - 1)
    if rounding == "half_up":
        return q + (rem >= half)
    # half_even: up when above half, or exactly half and q odd
    return q + ((rem > half) | ((rem == half) & ((q & 1) == 1)))


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
            raise ConfigError("softmax spec fields 'inv_frac' + 'exp_frac' too wide for int64")

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
    def from_dict(cls, d: dict[str, Any], path: str = "") -> "SoftmaxSpec":
        """Strict (``l1tagger.utils.dataclass_io.from_dict``: unknown, missing and mistyped fields name the dotted
        field, ``path`` being where the spec sits in a larger document); ranges checked on construction."""
        return dataclass_io.from_dict(cls, d, path)

    @classmethod
    def from_json(cls, text: str | bytes) -> "SoftmaxSpec":
        return cls.from_dict(dataclass_io.loads_json(text, "softmax spec"))

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
    o = round_shift(e * r, spec.product_shift, spec.rounding)
    return np.minimum(o, spec.out_max).astype(np.int64)


# ---------------------------------------------------------------------------------------------- exported node
def spec_of_node(node) -> tuple[SoftmaxSpec, int]:
    """(SoftmaxSpec, topk) of a FirmwareSoftmax NodeProto; ConfigError naming the node when malformed."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if "spec" not in attrs:
        raise ConfigError(f"FirmwareSoftmax node {node.name!r} has no 'spec' attribute")
    raw = attrs["spec"]
    try:
        spec = SoftmaxSpec.from_json(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except ConfigError as exc:
        raise ConfigError(f"FirmwareSoftmax node {node.name!r}: {exc}") from exc
    topk = int(attrs.get("topk", 0))
    if topk < 0:
        raise ConfigError(f"FirmwareSoftmax node {node.name!r}: topk must be >= 0, got {topk}")
    return spec, topk


# ---------------------------------------------------------------------------------------------- top-k hardware
def topk_select_np(q, keep, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The kept keys of each row in rank order: (idx, valid), int64 and bool arrays of shape (..., k).

    Slot s holds the key of rank s among the keys with keep=True (:func:`topk_keep_np`: larger logit first, ties to
    the lower index), so ``{idx[s]: valid[s]}`` is exactly the set ``topk_keep_np`` keeps. Slots beyond the number
    of kept keys (padding) have valid=False; their idx points at a dropped key and must be ignored. This is what
    the fused top-k attention's selection network computes (docs/firmware_softmax.md, "Top-k in hardware").
    """
    q = np.asarray(q, dtype=np.int64)
    keep = np.broadcast_to(np.asarray(keep, dtype=bool), q.shape)
    k = int(k)
    if not 0 < k <= q.shape[-1]:
        raise ConfigError(f"top-k selection: k = {k} must be in [1, {q.shape[-1]}] (the row length)")
    # stable sort on (dropped, -q): kept keys first, larger logits first, equal logits in index order
    key = np.where(keep, -q, np.iinfo(np.int64).max)
    order = np.argsort(key, axis=-1, kind="stable")[..., :k]
    return order.astype(np.int64), np.take_along_axis(keep, order, axis=-1)


def softmax_topk_slots(q, mask, k: int, spec: SoftmaxSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top-k firmware softmax computed on the k selected slots only: (idx, valid, o), each (..., k).

    o[s] == softmax_int(q, mask, k, spec)[idx[s]] on valid slots and 0 on the others: every dropped key has e = 0,
    so the max M (slot 0's logit), the sum S over the kept entries and hence r are the same integers as in the
    N-wide reference; only the order of the (exact) sum differs. The fused attention multiplies these k weights
    with the k selected value rows.
    """
    if spec is None:
        raise ConfigError("softmax_topk_slots needs a SoftmaxSpec")
    q = _as_int_logits(q, spec)
    keep = np.ones(q.shape, dtype=bool) if mask is None else np.broadcast_to(np.asarray(mask) != 0, q.shape)
    idx, valid = topk_select_np(q, keep, k)
    qs = np.take_along_axis(q, idx, axis=-1)
    exp_t, inv_t = spec.exp_table(), spec.inv_table()
    d = np.where(valid, qs[..., :1] - qs, 0)  # slot 0 holds the row maximum
    e = np.where(valid, exp_t[np.clip(d >> spec.exp_shift, 0, len(exp_t) - 1)], 0)
    s = e.sum(axis=-1, keepdims=True)
    r = inv_t[np.minimum(s >> spec.inv_shift, len(inv_t) - 1)]
    o = np.minimum(round_shift(e * r, spec.product_shift, spec.rounding), spec.out_max)
    return idx, valid, o.astype(np.int64)


def topk_attention_int(q, mask, k: int, spec: SoftmaxSpec, v) -> np.ndarray:
    """Fused reference of FirmwareSoftmax(topk=k) -> MatMul(A, V) in integers: sum_s o_s * v[idx_s] over the k slots.

    q (..., M, N) integer logits, v (..., N, P) integer values (any grid: the result is on o's grid times v's);
    returns (..., M, P) int64, equal to ``softmax_int(q, mask, k, spec) @ v`` exactly.
    """
    idx, _, o = softmax_topk_slots(q, mask, k, spec)
    v = np.asarray(v, dtype=np.int64)
    batch = np.broadcast_shapes(idx.shape[:-2], v.shape[:-2])
    idx = np.broadcast_to(idx, batch + idx.shape[-2:])
    o = np.broadcast_to(o, batch + o.shape[-2:])
    v = np.broadcast_to(v, batch + v.shape[-2:])
    rows = np.take_along_axis(v[..., None, :, :], idx[..., :, :, None], axis=-2)  # (..., M, k, P)
    return (o[..., None] * rows).sum(axis=-2)


@dataclass(frozen=True)
class TopkAttention:
    """A FirmwareSoftmax(topk) -> idempotent Quant -> MatMul(A, V) chain that the firmware computes fused."""

    softmax: Any  # onnx NodeProto
    quant: Any
    matmul: Any
    spec: SoftmaxSpec
    topk: int


def topk_attention_fusions(graph, consts: dict, keep_tensors=()) -> dict[str, TopkAttention]:
    """softmax node name -> :class:`TopkAttention` for every chain the firmware may fuse, in a cleaned graph.

    A chain qualifies when the FirmwareSoftmax has topk > 0, its output is read only by a Quant that is idempotent on
    the softmax grid (scale 2^-out_frac, range holding [0, out_max]: it never rounds nor saturates), and that Quant's
    output only by a MatMul as its left operand (the attention weights A of A @ V); no tensor of the chain is a graph
    output or in ``keep_tensors`` (e.g. probes). ``consts`` maps initializer names to values (the Quant's scale,
    zero point and bit width). Whether topk < N (otherwise nothing is dropped) is left to the walker, which knows N.
    """
    from l1tagger.contract.quant import decode_quant

    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            if name:
                consumers.setdefault(name, []).append(node)
    outside = {o.name for o in graph.output} | set(keep_tensors)
    out: dict[str, TopkAttention] = {}
    for sm in graph.node:
        if sm.op_type != ONNX_OP_TYPE:
            continue
        spec, topk = spec_of_node(sm)
        if topk <= 0:
            continue
        users = consumers.get(sm.output[0], [])
        if len(users) != 1 or users[0].op_type != "Quant" or sm.output[0] in outside:
            continue
        quant = users[0]
        if quant.input[0] != sm.output[0] or any(n not in consts for n in quant.input[1:4]):
            continue
        qs = decode_quant(quant, *(consts[n] for n in quant.input[1:4]))
        if qs.frac != spec.out_frac or qs.int_min > 0 or qs.int_max < spec.out_max:
            continue
        users = consumers.get(quant.output[0], [])
        if len(users) != 1 or users[0].op_type != "MatMul" or quant.output[0] in outside:
            continue
        mm = users[0]
        if mm.input[0] != quant.output[0] or mm.input[1] == quant.output[0]:
            continue
        out[sm.name] = TopkAttention(sm, quant, mm, spec, topk)
    return out
