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

CONSTANTS: da4ml keeps each traced value in a hardware domain (value / scale factor), and the factor drifts by the
weight scales of every layer before (2^-55 at the class-attention logits of a one-block tagger). A non-zero
constant in such a domain is stored with at most 2^+-32 resolution by da4ml 0.6.0, so a multiplexer or min/max
against it is built wrong (seen: 4 of 3000 logits off by one LSB in the Verilog and in da4ml's C++ interpreter).
Steps 2 and 3 are therefore written with constant additions (exact: stored in LSB units) and comparisons with 0
only; :func:`l1tagger.rtl.lower.check_constants` rejects any logic that still holds such a constant.
"""

from __future__ import annotations

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


def _rank_keep(q: list, keep: list, k: int) -> list:
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


def softmax_row(q: list, keep: list, spec, topk: int) -> list:
    """One row: q = integer-domain logits (FixedVariable or int), keep = 0/1 variables or ints. Returns o_j."""
    n = len(q)
    if 0 < topk < n:
        keep = _rank_keep(q, keep, topk)
    exp_t, inv_t = spec.exp_table(), spec.inv_table()
    # the masked max on u = q - in_min >= 0, so the dropped keys are the constant 0: no non-zero constant meets the
    # logits' domain in a multiplexer (CONSTANTS in the module docstring); M - q_j = max(u) - u_j
    u = [qj - spec.in_min for qj in q]
    m = tree_reduce([select(kb, uj, 0) for uj, kb in zip(u, keep)], vmax)
    shift_e = 1 << spec.exp_shift
    e = []
    for uj, kb in zip(u, keep):
        if isinstance(kb, (int, float)) and not kb:
            e.append(0)
            continue
        d = m - uj
        if isinstance(d, FixedVariable):
            # >> exp_shift (floor); the clamp to the table's last entry is inside the lookup (its index is clipped)
            d = d.relu().quantize(0, max(1, spec.in_bits + 1), -spec.exp_shift)
            ej = _table_lookup(d, exp_t, shift_e)
        else:
            ej = float(exp_t[min(max(int(d), 0) >> spec.exp_shift, len(exp_t) - 1)])
        e.append(select(kb, ej, 0))
    s = tree_sum(e)
    shift_i = 1 << spec.inv_shift
    if isinstance(s, FixedVariable):
        s_bits = _uint_bits(n << spec.exp_frac) + 1
        si = s.quantize(0, s_bits, -spec.inv_shift)  # >> inv_shift (floor)
        si = vmin(si, (len(inv_t) - 1) * shift_i)
        r = _table_lookup(si, inv_t, shift_i)
    else:
        r = float(inv_t[min(int(s) >> spec.inv_shift, len(inv_t) - 1)])
    mode = DA4ML_ROUNDING[spec.rounding] if spec.product_shift else "TRN"
    out = []
    for ej in e:
        if not isinstance(ej, FixedVariable) and not isinstance(r, FixedVariable):
            p = int(ej) * int(r)
            o = min(int(round_shift(p, spec.product_shift, spec.rounding)), spec.out_max)
            out.append(float(o))
            continue
        p = ej * r
        if not isinstance(p, FixedVariable):
            out.append(float(min(int(round_shift(int(p), spec.product_shift, spec.rounding)), spec.out_max)))
            continue
        p = p * (2.0 ** -spec.product_shift)
        o = p.quantize(0, _uint_bits(int(p.high)) + 1, 0, "WRAP", mode)
        out.append(vmin(o, spec.out_max))
    return out


def check_spec_rounding(spec, node_name: str) -> None:
    if spec.product_shift and spec.rounding not in DA4ML_ROUNDING:
        raise ConfigError(
            f"FirmwareSoftmax node {node_name!r}: rounding {spec.rounding!r} cannot be expressed in da4ml, which rounds "
            f"only by truncation (floor) or half-up; export with a floor or half_up recipe (e.g. quantize/int8_floor.yaml)"
        )


def firmware_softmax(logits, mask, spec, topk: int, node_name: str = "FirmwareSoftmax"):
    """The firmware softmax over the last axis of a traced array; mask broadcasts with the key axis last."""
    check_spec_rounding(spec, node_name)
    L = raw(logits)
    shape = L.shape
    n = shape[-1]
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
    q2, k2 = q.reshape(-1, n), np.asarray(keep, dtype=object).reshape(-1, n)
    out = np.empty(q2.shape, dtype=object)
    for r in range(q2.shape[0]):
        out[r] = softmax_row(list(q2[r]), list(k2[r]), spec, int(topk))
    oscale = 2.0**-spec.out_frac
    out = np.frompyfunc(lambda v: v * oscale, 1, 1)(out).reshape(shape)
    return FixedVariableArray(out, hwconf=HWCONF)
