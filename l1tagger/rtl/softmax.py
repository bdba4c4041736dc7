"""The firmware softmax (``docs/firmware_softmax.md``) on da4ml traced arrays, step by step, bit-exact.

Per row of N keys (integer domain, value = integer * 2^-frac):

1. select   keep_j = mask_j; with top-k, rank_i = #{kept j: q_j > q_i} + #{kept j < i: q_j == q_i} from a
            comparator network (N(N-1) comparisons per row), keep_i &= rank_i < k
2. max      M = max_j (keep_j ? q_j : in_min)                     (balanced comparator tree)
3. exp      e_j = keep_j ? EXP[min(relu(M - q_j) >> exp_shift, last)] : 0    (``.apply`` lookup table)
4. sum      S = sum_j e_j                                           (exact adder tree)
5. inverse  r = INV[min(S >> inv_shift, last)]                      (``.apply`` lookup table)
6. product  o_j = min(round(e_j * r >> product_shift), out_max)     (product of two variables, floor/half-up)

The tables are :meth:`SoftmaxSpec.exp_table` / :meth:`SoftmaxSpec.inv_table` verbatim.

Top-k attention (FirmwareSoftmax(topk) -> idempotent Quant -> MatMul(A, V), found by
``l1tagger.contract.softmax.topk_attention_fusions``) is built fused by :func:`topk_attention`: per query row
:func:`select_slots` (k rounds of a balanced argmax tree carrying each key's value row) yields the kept keys in rank
order, the softmax steps run on those k slots (slot 0 is the maximum: no max tree, k - 1 exp reads), and each output
sums k products instead of N (docs/firmware_softmax.md, "Top-k in hardware"). :func:`rank_keep` is the unfused
design's all-pairs rank network (``lower_model(..., fuse_topk=False)``).

CONSTANTS: da4ml keeps each traced value in a hardware domain (value / scale factor), and the factor drifts by the
weight scales of every layer before (2^-55 at the class-attention logits of a one-block tagger). A non-zero
constant in such a domain is stored with at most 2^+-32 resolution by da4ml 0.6.0, so a multiplexer or min/max
against it is built wrong (seen: 4 of 3000 logits off by one LSB in the Verilog and in da4ml's C++ interpreter).
Steps 2 and 3 are therefore written with constant additions (exact: stored in LSB units) and comparisons with 0
only; :func:`l1tagger.rtl.lower.check_constants` rejects any logic that still holds such a constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from da4ml.trace import FixedVariable, FixedVariableArray

from l1tagger.contract.quant import ROUNDING
from l1tagger.contract.softmax import QONNX_ROUNDING, round_shift
from l1tagger.errors import ConfigError, ConversionError
from l1tagger.rtl.traced import HWCONF, is_bit, raw, select, tree_reduce, tree_sum, vmax, vmin

#: spec rounding -> da4ml round mode, from the contract's rounding table (the products are non-negative)
DA4ML_ROUNDING = {r: ROUNDING[q].da4ml_nonneg for r, q in QONNX_ROUNDING.items() if ROUNDING[q].da4ml_nonneg}


def _uint_bits(max_value: int) -> int:
    return max(1, int(max_value).bit_length())


def _table_lookup(v: FixedVariable, table: np.ndarray, step: int):
    """table[v / step] for a non-negative integer-domain variable v on the grid ``step`` (a ROM)."""
    if v.low == v.high:
        return FixedVariable.from_const(float(table[int(v.low) // step]), hwconf=HWCONF)
    arr = FixedVariableArray(np.array([v], dtype=object), hwconf=HWCONF)
    fn = lambda x: table[np.clip(np.round(np.asarray(x) / step).astype(np.int64), 0, len(table) - 1)].astype(np.float64)
    out_bits = _uint_bits(int(table.max()))
    return arr.apply(fn).quantize(k=0, i=out_bits, f=0)._vars[0]


def rank_keep(q: list, keep: list, k: int) -> list:
    """keep_i & (rank_i < k): the top-k comparator network of one row (ties to the lower index)."""
    n = len(q)
    out = []
    for i in range(n):
        beats = []
        for j in range(n):
            if j == i:
                continue
            b = (q[j] >= q[i]) if j < i else (q[j] > q[i])
            beats.append(select(keep[j], b, 0) if not isinstance(keep[j], (int, float)) else (b if keep[j] else 0))
        beats = [b for b in beats if not (isinstance(b, (int, float)) and b == 0)]
        rank = tree_sum(beats) if beats else 0
        below = (rank < k) if isinstance(rank, FixedVariable) else (1 if rank < k else 0)
        kb = keep[i]
        if isinstance(kb, (int, float)):
            out.append(below if kb else 0)
        else:
            out.append(select(kb, below, 0))
    return out


def _exp_of(d, spec, exp_t: np.ndarray):
    """EXP[min(d >> exp_shift, last)] of a max-subtracted difference d >= 0 (variable or integer)."""
    if isinstance(d, FixedVariable):
        # >> exp_shift (floor); the clamp to the table's last entry is inside the lookup (its index is clipped)
        d = d.relu().quantize(0, max(1, spec.in_bits + 1), -spec.exp_shift)
        return _table_lookup(d, exp_t, 1 << spec.exp_shift)
    return float(exp_t[min(max(int(d), 0) >> spec.exp_shift, len(exp_t) - 1)])


def _inverse_of(s, n_terms: int, spec, inv_t: np.ndarray):
    """r = INV[min(S >> inv_shift, last)] of the exact sum S of n_terms exp entries."""
    shift_i = 1 << spec.inv_shift
    if isinstance(s, FixedVariable):
        s_bits = _uint_bits(n_terms << spec.exp_frac) + 1
        si = s.quantize(0, s_bits, -spec.inv_shift)  # >> inv_shift (floor)
        si = vmin(si, (len(inv_t) - 1) * shift_i)
        return _table_lookup(si, inv_t, shift_i)
    return float(inv_t[min(int(s) >> spec.inv_shift, len(inv_t) - 1)])


def _weight_of(ej, r, spec):
    """o = min(round(e * r >> product_shift), out_max), the output integer (variable or float)."""
    if not isinstance(ej, FixedVariable) and not isinstance(r, FixedVariable):
        return float(min(int(round_shift(int(ej) * int(r), spec.product_shift, spec.rounding)), spec.out_max))
    p = ej * r
    if not isinstance(p, FixedVariable):
        return float(min(int(round_shift(int(p), spec.product_shift, spec.rounding)), spec.out_max))
    mode = DA4ML_ROUNDING[spec.rounding] if spec.product_shift else "TRN"
    p = p * (2.0 ** -spec.product_shift)
    o = p.quantize(0, _uint_bits(int(p.high)) + 1, 0, "WRAP", mode)
    return vmin(o, spec.out_max)


def softmax_row(q: list, keep: list, spec, topk: int) -> list:
    """One row: q = integer-domain logits (FixedVariable or int), keep = 0/1 variables or ints. Returns o_j."""
    n = len(q)
    if 0 < topk < n:
        keep = rank_keep(q, keep, topk)
    exp_t, inv_t = spec.exp_table(), spec.inv_table()
    # the masked max on u = q - in_min >= 0, so the dropped keys are the constant 0: no non-zero constant meets the
    # logits' domain in a multiplexer (CONSTANTS in the module docstring); M - q_j = max(u) - u_j
    u = [qj - spec.in_min for qj in q]
    m = tree_reduce([select(kb, uj, 0) for uj, kb in zip(u, keep)], vmax)
    e = []
    for uj, kb in zip(u, keep):
        if isinstance(kb, (int, float)) and not kb:
            e.append(0)
            continue
        e.append(select(kb, _exp_of(m - uj, spec, exp_t), 0))
    r = _inverse_of(tree_sum(e), n, spec, inv_t)
    return [_weight_of(ej, r, spec) for ej in e]


# ------------------------------------------------------------------------------------------- fused top-k attention
def _ge(a, b):
    """a >= b as a 0/1 variable (or int when both are constants)."""
    if not isinstance(a, FixedVariable) and not isinstance(b, FixedVariable):
        return int(a >= b)
    return a >= b


def _and(a, b):
    if not isinstance(a, FixedVariable):
        return b if a else 0
    if not isinstance(b, FixedVariable):
        return a if b else 0
    return a & b


def _not(a):
    return ~a if isinstance(a, FixedVariable) else 1 - int(a)


def _mux(bit, a, b):
    """``a`` where the 0/1 ``bit`` is 1, else ``b``, with a variable in the first operand of da4ml's multiplexer.

    da4ml 0.6.0 builds ``msb_mux(constant, variable)`` wrong when the variable's hardware domain has a negative
    factor (e.g. a logit after the Quant's saturation, ``hi - relu(hi - r)``): the variable comes out negated (seen:
    the winner-clearing step ``bit ? 0 : u`` returned -u). The operands are swapped behind a negated bit instead.
    """
    if isinstance(bit, FixedVariable) and bit.low != bit.high and isinstance(b, FixedVariable) and \
            (not isinstance(a, FixedVariable) or a.low == a.high):
        return select(_not(bit), b, a)
    return select(bit, a, b)


def argmax_tree(keys: list, payloads: list, want_winner: bool = True):
    """Balanced argmax of one row (ties to the lower index): (max key, payload of the winner, one-hot winner bits).

    Each tree node compares its two keys once (the left operand always holds the lower indices, so ``>=`` keeps the
    lower index on a tie) and multiplexes the key and the payload (the winner's value row) with that bit; the
    one-hot winner bits are ANDed top-down from the same bits (``want_winner=False`` skips them).
    """
    items = [(u, list(p), ("leaf", j)) for j, (u, p) in enumerate(zip(keys, payloads))]

    def pick(a, b):
        t = _ge(a[0], b[0])
        return _mux(t, a[0], b[0]), [_mux(t, x, y) for x, y in zip(a[1], b[1])], ("node", t, a[2], b[2])

    key, payload, root = tree_reduce(items, pick)
    if not want_winner:
        return key, payload, None
    win = [0] * len(keys)
    stack = [(root, 1)]
    while stack:
        node, bit = stack.pop()
        if node[0] == "leaf":
            win[node[1]] = bit
            continue
        _, t, left, right = node
        stack.append((left, _and(bit, t)))
        stack.append((right, _and(bit, _not(t))))
    return key, payload, win


def select_slots(keys: list, values: list, k: int) -> list:
    """The k largest keys in rank order with their value rows: [(key_s, values_s)] for s < k, from k rounds of
    :func:`argmax_tree`, the winner's key cleared to 0 between rounds. Keys are >= 0 with 0 for a dropped key, so a
    slot whose key is 0 is padding (fewer than k non-zero keys)."""
    slots = []
    for s in range(k):
        us, vs, win = argmax_tree(keys, values, want_winner=s < k - 1)
        slots.append((us, vs))
        if win is not None:
            keys = [_mux(w, 0, u) for w, u in zip(win, keys)]
    return slots


def topk_attention_row(q: list, keep: list, values: list, spec, k: int) -> list:
    """One query row of FirmwareSoftmax(topk=k) -> MatMul(A, V), fused (docs/firmware_softmax.md, top-k hardware).

    q: N integer-domain logits, keep: N 0/1 key bits, values: N value rows (P entries each, on V's grid).
    Returns the P outputs sum_s w_s * V[idx_s] (w_s = o_s * 2^-out_frac):

    1. select   u_j = keep_j ? q_j - in_min + 1 : 0 (> 0 exactly for kept keys); k rounds of :func:`argmax_tree`,
                each yielding the next key in rank order with its value row; the winner's u is cleared for the
                next round. A slot whose key u is 0 is padding (fewer than k kept keys): weight 0.
    2. exp      slot 0 holds the maximum, so d_s = u_0 - u_s and e_0 = EXP[0]; k table reads instead of N
    3. sum/inv  S over the k slots (the same integer as over N: dropped keys contribute 0), r = INV[...]
    4. product  o_s as in the softmax; k x P products o_s * V[idx_s, p] summed per output (instead of N x P)
    """
    exp_t, inv_t = spec.exp_table(), spec.inv_table()
    slots = select_slots([select(kb, qj - spec.in_min + 1, 0) for qj, kb in zip(q, keep)], values, k)
    top = slots[0][0]
    e = []
    for s, (us, _) in enumerate(slots):
        valid = _ge(us, 1) if not isinstance(us, FixedVariable) else us > 0
        ej = float(exp_t[0]) if s == 0 else _exp_of(top - us, spec, exp_t)
        e.append(select(valid, ej, 0))
    r = _inverse_of(tree_sum(e), k, spec, inv_t)
    scale = 2.0**-spec.out_frac
    w = [_weight_of(ej, r, spec) * scale for ej in e]
    n_p = len(values[0]) if values else 0
    return [tree_sum([ws * vs[p] for ws, (_, vs) in zip(w, slots)]) for p in range(n_p)]


def check_spec_rounding(spec, node_name: str) -> None:
    if spec.product_shift and spec.rounding not in DA4ML_ROUNDING:
        raise ConfigError(
            f"FirmwareSoftmax node {node_name!r}: rounding {spec.rounding!r} cannot be expressed in da4ml, which rounds "
            f"only by truncation (floor) or half-up; export with a floor or half_up recipe (e.g. quantize/int8_floor.yaml)"
        )


def _logits_and_keep(logits, mask, spec, node_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(integer-domain logits, 0/1 keep bits broadcast to the logits' shape), object arrays; ConversionError naming
    the node when the logits are off the spec grid or the mask is not 0/1."""
    check_spec_rounding(spec, node_name)
    L = raw(logits)
    shape = L.shape
    scale = 2.0**spec.in_frac
    q = np.frompyfunc(lambda v: v * scale, 1, 1)(L.astype(object))
    for v in q.ravel():
        if isinstance(v, FixedVariable) and (v.step < 1 or v.low < spec.in_min or v.high > spec.in_max):
            raise ConversionError(
                f"FirmwareSoftmax node {node_name!r}: input is not on the spec grid fixed<{spec.in_bits},"
                f"frac {spec.in_frac}> (range [{float(v.low)}, {float(v.high)}], step {float(v.step)}): "
                f"the graph must quantize the logits to 2^-{spec.in_frac} first"
            )
    if mask is None:
        keep = np.ones(shape, dtype=object)
    else:
        keep = np.broadcast_to(raw(mask).astype(object), shape)
        for v in keep.ravel():
            if isinstance(v, FixedVariable) and not is_bit(v) and v.low != v.high:
                raise ConversionError(
                    f"FirmwareSoftmax node {node_name!r}: the key mask must be a 0/1 (1-bit unsigned) tensor"
                )
        keep = np.frompyfunc(lambda v: (1 if v else 0) if not isinstance(v, FixedVariable) else v, 1, 1)(keep)
    return q, np.asarray(keep, dtype=object)


def firmware_softmax(logits, mask, spec, topk: int, node_name: str = "FirmwareSoftmax"):
    """The firmware softmax over the last axis of a traced array; mask broadcasts with the key axis last."""
    q, keep = _logits_and_keep(logits, mask, spec, node_name)
    shape = q.shape
    n = shape[-1]
    q2, k2 = q.reshape(-1, n), keep.reshape(-1, n)
    out = np.empty(q2.shape, dtype=object)
    for r in range(q2.shape[0]):
        out[r] = softmax_row(list(q2[r]), list(k2[r]), spec, int(topk))
    oscale = 2.0**-spec.out_frac
    out = np.frompyfunc(lambda v: v * oscale, 1, 1)(out).reshape(shape)
    return FixedVariableArray(out, hwconf=HWCONF)


def topk_attention(logits, mask, values, spec, topk: int, node_name: str = "FirmwareSoftmax"):
    """FirmwareSoftmax(topk) -> MatMul(A, V) fused (:func:`topk_attention_row` per query row).

    logits (..., M, N) traced, mask broadcasting to it with the key axis last, values (..., N, P) traced or constant;
    batch axes broadcast as in numpy's matmul. Returns the (..., M, P) traced product, bit-exact to the unfused
    graph (``l1tagger.contract.softmax.topk_attention_int``).
    """
    q, keep = _logits_and_keep(logits, mask, spec, node_name)
    n = q.shape[-1]
    if q.ndim < 2 or not 0 < int(topk) < n:
        raise ConversionError(f"FirmwareSoftmax node {node_name!r}: fused top-k attention needs logits (..., M, N) "
                              f"and 0 < topk < N, got shape {q.shape} and topk {topk}")
    v = raw(values).astype(object)
    if v.ndim < 2 or v.shape[-2] != n:
        raise ConversionError(f"FirmwareSoftmax node {node_name!r}: value tensor {v.shape} does not match {n} keys")
    batch = np.broadcast_shapes(q.shape[:-2], v.shape[:-2])
    q = np.broadcast_to(q, batch + q.shape[-2:])
    keep = np.broadcast_to(keep, batch + keep.shape[-2:])
    v = np.broadcast_to(v, batch + v.shape[-2:])
    m, n_p = q.shape[-2], v.shape[-1]
    out = np.empty(batch + (m, n_p), dtype=object)
    for b in np.ndindex(*batch) if batch else [()]:
        rows = [list(v[b][j]) for j in range(n)]
        for i in range(m):
            out[b + (i,)] = topk_attention_row(list(q[b][i]), list(keep[b][i]), rows, spec, int(topk))
    return FixedVariableArray(out, hwconf=HWCONF)


@dataclass(frozen=True)
class PendingTopk:
    """The attention weights of a fused FirmwareSoftmax(topk) before its MatMul: never materialised as N-wide
    weights; the MatMul of the chain (``l1tagger.contract.softmax.topk_attention_fusions``) calls :meth:`times`."""

    logits: object
    mask: object
    spec: object
    topk: int
    node_name: str

    def times(self, values):
        return topk_attention(self.logits, self.mask, values, self.spec, self.topk, self.node_name)
