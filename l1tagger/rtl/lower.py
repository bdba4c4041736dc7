"""Lower a cleaned l1tagger QONNX graph to da4ml logic by interpreting it node by node on traced arrays.

    lowered = lower_model("model.onnx")          # or a qonnx ModelWrapper / onnx ModelProto
    lowered.comb                                 # da4ml CombLogic (one jet per evaluation, batch axis 1)
    lowered.encode_inputs({"x": x, "mask": m, "pair": p})   # (n_jets, n_inputs) values on the input grids
    lowered.decode_outputs(y)                    # {"logits": (n_jets, n_classes)}

Each op type has one handler in :data:`OP_HANDLERS` (a registry: add an op by adding a function). Handlers take
the node, its input values (numpy constants or da4ml ``FixedVariableArray``) and the :class:`LowerContext`, and
return the output values; nodes whose inputs are all constant are folded by the same handlers.

Semantics come from the torch-free contract (:mod:`l1tagger.contract`): the op set, Quant decoding, the rounding
table and the layout ops; this module keeps only the da4ml arithmetic. Semantics that matter for bit exactness:

* ``Quant`` on a traced tensor: the contract's ``ROUNDING`` table gives the da4ml mode (``FLOOR`` -> truncation);
  a mode da4ml reproduces only on non-negative inputs (``HALF_UP`` -> half-up: qonnx's HALF_UP rounds ties away
  from zero, da4ml's toward +inf; ``DOWN`` -> truncation) is used only where the input is provably non-negative;
  any mode is accepted where no rounding happens (the input already lies on the output grid, e.g. the idempotent
  Quant after a softmax). Otherwise ConfigError: da4ml rounds only by truncation or half-up. Constants (and
  constant traced values) are folded with qonnx's own rounding function. Saturation to the integer range (narrow
  range included) is exact.
* Graph inputs are the RTL input ports, carrying values already on the grid of their ``Quant`` node (the
  preprocessing grid); a graph input without a ``Quant`` consumer (the key mask) is a 1-bit unsigned 0/1 port.
* ``L1ParticleFeatures`` / ``L1WordMask`` / ``L1PairFeatures`` (features of L1 particle words, docs/l1_inputs.md):
  the integer steps of :mod:`l1tagger.contract.l1features` on the traced words (fields re-read at their widths,
  comparator/multiplexer seed tree, floor-log codes, the spec's log and softplus tables as ROMs, exact squares);
  the table digests are kept in ``LoweredModel.l1_features``.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from da4ml.trace import FixedVariable, FixedVariableArray, FixedVariableArrayInput, comb_trace
from onnx import numpy_helper

from l1tagger.contract import l1features, pairtable
from l1tagger.contract.opset import SINGLE_INPUT_LAYOUT_OPS, concat, layout
from l1tagger.contract.quant import QuantSpec, decode_quant
from l1tagger.contract.softmax import softmax_int, spec_of_node, topk_attention_fusions
from l1tagger.errors import ConfigError, ConversionError
from l1tagger.rtl.attribution import node_costs, traced_vars
from l1tagger.rtl.traced import (HWCONF, elementwise, exact_decimal, is_bit, is_traced, matmul, raw, select,
                                 tree_reduce, tree_sum, vmax, vmin, wrap)


@dataclass
class InputPort:
    """One graph input as an RTL port: shape without the batch axis and the grid its values lie on."""

    name: str
    shape: tuple[int, ...]
    bits: int
    frac: int
    signed: bool
    narrow: bool = False
    quantized: bool = True  # False: raw 0/1 port (the key mask)
    rounding: str = "FLOOR"  # qonnx rounding_mode of the input's Quant node

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def encode(self, values: np.ndarray) -> np.ndarray:
        """(n, *shape) float values -> the values the port carries (the graph's input Quant applied, qonnx-exact)."""
        v = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        if v.shape[1] != self.size:
            raise ConversionError(f"input {self.name!r}: expected {self.size} values per jet, got {v.shape[1]}")
        if not self.quantized:
            if not np.all((v == 0) | (v == 1)):
                raise ConversionError(f"input {self.name!r} is a 0/1 port but holds values other than 0 and 1")
            return v
        return QuantSpec(self.signed, self.narrow, self.bits, self.frac, self.rounding).apply(v)


@dataclass
class OutputPort:
    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class LoweredModel:
    """The traced logic plus the port layout needed to drive it."""

    comb: object  # da4ml CombLogic
    inputs: list[InputPort]
    outputs: list[OutputPort]
    n_nodes: int
    op_counts: dict[str, int] = field(default_factory=dict)
    #: the on-chip features of L1 words: one {node, op, spec, table_digest} per feature node (the ROMs' contents)
    l1_features: list[dict] = field(default_factory=list)
    #: da4ml's cost charged to the nodes that built it (``l1tagger.rtl.attribution``; sums to ``comb.cost``)
    node_cost: dict[str, float] = field(default_factory=dict)

    def encode_inputs(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        missing = [p.name for p in self.inputs if p.name not in arrays]
        if missing:
            raise ConversionError(f"inputs {missing} not given (model inputs: {[p.name for p in self.inputs]})")
        return np.concatenate([p.encode(arrays[p.name]) for p in self.inputs], axis=1)

    def decode_outputs(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        out, o = {}, 0
        for p in self.outputs:
            out[p.name] = flat[:, o:o + p.size].reshape((len(flat),) + p.shape)
            o += p.size
        return out


@dataclass
class LowerContext:
    model: onnx.ModelProto
    consts: dict[str, np.ndarray]
    l1_features: list[dict] = field(default_factory=list)
    #: FirmwareSoftmax(topk) -> Quant -> MatMul chains computed fused (contract ``topk_attention_fusions``)
    topk_fusions: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ helpers
def _const(x, node, what: str) -> np.ndarray:
    if x is None or is_traced(x):
        raise ConversionError(f"node {node.name!r} ({node.op_type}): {what} must be a constant")
    return np.asarray(x)


def quant_spec(node, ins) -> QuantSpec:
    """The contract's decoding of a Quant node from its (constant) scale, zero point and bit width inputs."""
    return decode_quant(node, _const(ins[1], node, "scale"), _const(ins[2], node, "zero point"),
                        _const(ins[3], node, "bit width"))


def _rounding_mode(spec: QuantSpec, x: FixedVariableArray, node) -> str:
    """da4ml round mode for a qonnx Quant on a traced tensor (ConfigError when da4ml cannot express it)."""
    mode = spec.mode
    if mode.da4ml is not None:
        return mode.da4ml
    variables = [v for v in x._vars.ravel() if v.low != v.high]  # constants are folded exactly, by qonnx's rule
    if not any(float(v.step) < spec.scale for v in variables):
        return "TRN"  # nothing to round: the input already lies on the output grid
    if mode.da4ml_nonneg is not None and all(v.low >= 0 for v in variables):
        return mode.da4ml_nonneg
    raise ConfigError(
        f"Quant node {node.name!r} rounds with rounding_mode={spec.rounding!r}: da4ml rounds only by truncation "
        f"(FLOOR) or half-up (HALF_UP on non-negative values); export the model with a floor or half-up recipe "
        f"(e.g. quantize/int8_floor.yaml) for the RTL route"
    )


def _clamp(r: FixedVariable, lo: float, hi: float):
    """min(max(r, lo), hi) exactly, as c + relu(r - c) / c - relu(c - r).

    Written with adders and relu rather than comparator + constant multiplexer: da4ml's Verilog mux needs one
    operand on the output grid, which a saturation constant finer than r's grid (e.g. 127/128 for a 0/1 input)
    breaks.
    """
    if r.low < lo:
        r = (r - lo).relu() + lo if r.high > lo else FixedVariable.from_const(lo, hwconf=HWCONF)
    if isinstance(r, FixedVariable) and r.high > hi:
        r = hi - (hi - r).relu() if r.low < hi else FixedVariable.from_const(hi, hwconf=HWCONF)
    return r


# ------------------------------------------------------------------------------------------------ handlers
def op_quant(node, ins, ctx):
    from l1tagger.rtl.softmax import PendingTopk

    x = ins[0]
    if isinstance(x, PendingTopk):  # the idempotent Quant of a fused top-k chain (checked by the fusion pass)
        return [x]
    spec = quant_spec(node, ins)
    if not is_traced(x):
        y = spec.apply(x)
        if not np.all(np.isfinite(y)):
            raise ConversionError(f"Quant node {node.name!r}: constant input {node.input[0]!r} holds NaN")
        return [y]
    f, step, lo, hi = spec.frac, spec.scale, spec.int_min, spec.int_max
    k, i = int(spec.signed), spec.bits - int(spec.signed)
    if isinstance(x, FixedVariableArrayInput) or any(type(v).__name__ == "FixedVariableInput" for v in x._vars.ravel()):
        # a graph input port: its values are already on this grid (InputPort.encode applies the Quant)
        return [x.quantize(k, np.broadcast_to(i - f, x.shape), np.broadcast_to(f, x.shape), "WRAP", "TRN")]
    mode = _rounding_mode(spec, x, node)
    out = []
    for v in x._vars.ravel():
        if v.low == v.high:
            out.append(FixedVariable.from_const(float(spec.apply(float(v.low))), hwconf=HWCONF))
            continue
        vk, vi, _ = v.kif
        # round only, wide enough not to wrap: |result| <= |v| + step < 2^(vi+1) while the step is below v's range;
        # a grid coarser than the whole range (vi < -f) rounds to 0 or +-step = +-2^-f, which needs 1 - f
        # integer bits (found on a pruned HGQ Linformer: -0.03125 floored to the grid 0.5 wrapped to 0)
        r = v.quantize(vk, max(vi + 1, 1 - f), f, "WRAP", mode)
        if isinstance(r, FixedVariable):
            r = _clamp(r, lo * step, hi * step)
        else:
            r = min(max(r, lo * step), hi * step)
        out.append(r.quantize(k, i - f, f, "WRAP", "TRN") if isinstance(r, FixedVariable) else r)
    return [wrap(np.array(out, dtype=object).reshape(x.shape), True)]


def op_matmul(node, ins, ctx):
    from l1tagger.rtl.softmax import PendingTopk

    if isinstance(ins[0], PendingTopk):  # attention weights of a fused top-k softmax times the values
        return [ins[0].times(ins[1])]
    return [matmul(ins[0], ins[1])]


def op_add(node, ins, ctx):
    return [elementwise(lambda a, b: a + b, ins[0], ins[1])]


def op_mul(node, ins, ctx):
    def mul(a, b):
        if is_bit(a) and not is_bit(b):
            return select(a, b, 0)
        if is_bit(b):
            return select(b, a, 0)
        return a * b

    return [elementwise(mul, ins[0], ins[1])]


def op_relu(node, ins, ctx):
    return [elementwise(lambda a: a.relu() if isinstance(a, FixedVariable) else max(a, 0.0), ins[0])]


def op_layout(node, ins, ctx):
    """A single-input layout op (contract semantics) on the raw array: constants or traced variables alike."""
    x = ins[0]
    consts = [None if i is None or is_traced(i) else np.asarray(i) for i in ins[1:]]
    return [wrap(layout(node, raw(x), consts), is_traced(x))]


def op_concat(node, ins, ctx):
    traced = any(is_traced(i) for i in ins)
    arrs = [raw(i).astype(object) if traced else raw(i) for i in ins]
    return [wrap(concat(node, arrs), traced)]


def op_firmware_softmax(node, ins, ctx):
    from l1tagger.rtl.softmax import firmware_softmax

    spec, topk = spec_of_node(node)
    logits = ins[0]
    mask = ins[1] if len(ins) > 1 else None
    if not is_traced(logits):
        q = np.round(np.asarray(logits) * 2.0**spec.in_frac).astype(np.int64)
        return [softmax_int(q, None if mask is None else np.asarray(mask), topk, spec) * 2.0**-spec.out_frac]
    if node.name in ctx.topk_fusions and 0 < topk < logits.shape[-1]:
        from l1tagger.rtl.softmax import PendingTopk, check_spec_rounding

        check_spec_rounding(spec, node.name)
        return [PendingTopk(logits, mask, spec, topk, node.name)]
    return [firmware_softmax(logits, mask, spec, topk, node.name)]


# ------------------------------------------------------------------------------------------------ L1 word features
# The integer steps of l1tagger.contract.l1features (docs/l1_inputs.md) on traced variables of one jet. Every value
# lives in the integer domain of the words (unit steps); logs are ROMs (``apply`` tables) over the floor-log code.
def _field(x, signed: bool, bits: int):
    """A word field reinterpreted with its width (wrapping, as wires of that width would)."""
    if isinstance(x, FixedVariable):
        return x.quantize(int(signed), bits - int(signed), 0, "WRAP", "TRN")
    v = int(round(float(x))) & ((1 << bits) - 1)
    return v - (1 << bits) if signed and v >= 1 << (bits - 1) else v


def _int_lookup(v, table: np.ndarray):
    """table[clip(v, 0, last)] for an integer-valued variable (a ROM over v's range); constants fold."""
    last = len(table) - 1
    if not isinstance(v, FixedVariable) or v.low == v.high:
        return int(table[min(max(int(v if not isinstance(v, FixedVariable) else v.low), 0), last)])
    arr = FixedVariableArray(np.array([v], dtype=object), hwconf=HWCONF)
    fn = lambda x: table[np.clip(np.round(np.asarray(x)).astype(np.int64), 0, last)].astype(np.float64)  # noqa
    lo, hi = int(table.min()), int(table.max())
    k = int(lo < 0)
    i = max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0, 1)
    return arr.apply(fn).quantize(k, i, 0)._vars[0]


def _flog_code(x, width: int, m: int):
    """The floor-log code s * 2^m + (x >> s) of a non-negative integer variable (comparators + multiplexers)."""
    if not isinstance(x, FixedVariable):
        return int(l1features.flog_code(int(x), width, m))
    # each candidate is kept to the m+1 bits it has when selected (x >> s < 2^(m+1)), so the code's range, and
    # the ROM over it, stay at the table's size instead of x's range
    c = x.quantize(0, m + 1, 0, "WRAP", "TRN")  # x itself when x < 2^(m+1)
    for k in range(m + 1, width):
        if x.high < (1 << k):
            break
        s = k - m
        shifted = (x.quantize(0, width, -s, "WRAP", "TRN") * 2.0**-s).quantize(0, m + 1, 0, "WRAP", "TRN")
        c = select(x >= (1 << k), shifted + s * (1 << m), c)  # floor(x / 2^s) + s 2^m
    return c


def _phi_wrap(d, pi: int):
    """d - 2pi [d >= pi] + 2pi [d < -pi], then narrowed to the signed width holding [-pi, pi)."""
    if not isinstance(d, FixedVariable):
        return int(l1features.phi_wrap(int(d), pi))
    d = select(d >= pi, d - 2 * pi, d)
    d = select(d < -pi, d + 2 * pi, d)
    return d.quantize(1, (pi - 1).bit_length(), 0, "WRAP", "TRN") if isinstance(d, FixedVariable) else d


def _half(a):
    """floor(a / 2) of a non-negative integer (a right shift: wiring)."""
    if not isinstance(a, FixedVariable):
        return int(a) >> 1
    return (a * 0.5).quantize(0, max(int(a.high).bit_length() - 1, 1), 0, "WRAP", "TRN")


def _vabs(a):
    return abs(a) if isinstance(a, FixedVariable) else abs(int(a))


def _sat_mask(q, lo: int, hi: int, *bits):
    """clip(q, lo, hi), then 0 unless every 0/1 ``bits`` is 1."""
    q = _clamp(q, lo, hi) if isinstance(q, FixedVariable) else min(max(int(q), lo), hi)
    for b in bits:
        q = select(b, q, 0)
    return q


def _lndelta(de, dp, spec: l1features.L1FeatureSpec, t: dict):
    """ln Delta by the spec's delta method (``l1features.lndelta_int``): d2 - exact squares, one wide code and the
    LOGDR ROM; lse - two narrow codes of |deta|, |dphi| and LOGABS ROMs, a maximum and the HALFSP ROM."""
    m = spec.log_mantissa_bits
    if spec.delta == "d2":
        d2 = (de**2 if isinstance(de, FixedVariable) else de * de) + (dp**2 if isinstance(dp, FixedVariable) else dp * dp)
        return _int_lookup(_flog_code(d2, spec.d2_bits, m), t["logdr"])
    a, b = (_int_lookup(_flog_code(_vabs(d), spec.dabs_bits, m), t["logabs"]) for d in (de, dp))
    return vmax(a, b) + _int_lookup(_vabs(a - b), t["halfsp"])


def _word_features(words: np.ndarray, spec: l1features.L1FeatureSpec, kind: str) -> np.ndarray:
    """One jet's words (N, n_fields) of variables -> the integer features of ``kind`` (object array)."""
    fmt, m = spec.format, spec.log_mantissa_bits
    col = {f.name: [_field(w, f.signed, f.bits) for w in words[:, fmt.index(f.name)]] for f in fmt.fields}
    v = col["valid"]
    if kind == "mask":
        return np.array(v, dtype=object)
    p, h, f, pid = ([select(vi, x, 0) for vi, x in zip(v, col[name])] for name in ("pt", "eta", "phi", "pid"))
    t = spec.tables()
    lp = [_int_lookup(_flog_code(x, spec.pt_code_bits, m), t["logpt"]) for x in p]
    n = len(p)
    if kind == "pair":
        out = np.empty((n, n, l1features.N_PAIR_FEATURES), dtype=object)
        for i in range(n):
            for j in range(i, n):
                de, dp = h[i] - h[j], _phi_wrap(f[i] - f[j], spec.pi)
                r = _vabs(lp[i] - lp[j])
                if spec.pair_set == "words":  # codes of |deta|, |dphi| (comparators + multiplexers), min, |diff|
                    q = [_flog_code(_vabs(d), spec.dabs_bits, spec.code_mantissa_bits) for d in (de, dp)]
                    q += [vmin(lp[i], lp[j]), r]
                elif spec.pair_set == "part_codes":  # one code of the octagonal distance, shift-adds by K
                    a, b = _vabs(de), _vabs(dp)
                    c = _flog_code(vmax(a, b) + _half(vmin(a, b)), spec.dist_bits, spec.code_mantissa_bits)
                    kc = spec.code_step * c
                    q = [vmin(lp[i], lp[j]) + kc, r, c, lp[i] + lp[j] + 2 * kc]
                else:
                    lnd = _lndelta(de, dp, spec, t)
                    q = [vmin(lp[i], lp[j]) + lnd, -(r + _int_lookup(r, t["softplus"])), lnd,
                         lp[i] + lp[j] + 2 * lnd]
                both = select(v[i], v[j], 0)  # one AND of the valid bits per pair, then one multiplexer per feature
                out[i, j] = out[j, i] = [_sat_mask(x, spec.pair_min, spec.pair_max, both) for x in q]
        return out
    # the seed: the valid particle with the largest pt, ties to the lowest index (the left operand)
    keys = [select(vi, 2 * x + 1, 0) for vi, x in zip(v, p)]

    def pick(a, b):
        take_a = a[0] >= b[0]
        return tuple(select(take_a, x, y) for x, y in zip(a, b))

    _, hs, fs = tree_reduce(list(zip(keys, h, f)), pick)
    ljet = _int_lookup(_flog_code(tree_sum(p), spec.sum_code_bits, m), t["logpt"])
    one = 1 << spec.frac
    out = np.empty((n, spec.n_features), dtype=object)
    for i in range(n):
        ge1, ge2, ge4, ge6 = (pid[i] >= c for c in (1, 2, 4, 6))
        odd = _field(pid[i], False, 1)
        cols = {"logpt": lambda: lp[i], "logptrel": lambda: lp[i] - ljet, "deta": lambda: h[i] - hs,
                "dphi": lambda: _phi_wrap(f[i] - fs, spec.pi), "charge": lambda: select(ge2, 2 * odd - 1, 0) * one,
                "is_neutral_hadron": lambda: (1 - ge1) * one, "is_photon": lambda: (ge1 - ge2) * one,
                "is_charged_hadron": lambda: (ge2 - ge4) * one, "is_electron": lambda: (ge4 - ge6) * one,
                "is_muon": lambda: ge6 * one}
        out[i] = [_sat_mask(cols[name](), spec.x_min, spec.x_max, v[i]) for name in spec.particle_features]
    return out


def op_l1features(node, ins, ctx):
    """L1ParticleFeatures / L1WordMask / L1PairFeatures: the contract's integer steps on traced words."""
    spec = l1features.spec_of_node(node)
    kind = l1features.kind_of(node.op_type)
    frac = l1features.output_grid(spec, kind)[2]
    ctx.l1_features.append({"node": node.name, "op": node.op_type, "spec": spec.to_dict(),
                            "table_digest": spec.table_digest()})
    words = ins[0]
    if not is_traced(words):
        q = l1features.features_np(np.round(np.asarray(words)).astype(np.int64), spec, (kind,))[kind]
        return [q * 2.0**-frac]
    w = raw(words)
    for x in w.ravel():
        if isinstance(x, FixedVariable) and x.step != 1:
            raise ConversionError(f"{node.op_type} node {node.name!r}: the words are not on the unit grid (step "
                                  f"{float(x.step)}); a Quant node with scale 1 must precede the feature ops")
    out = np.stack([_word_features(w[b], spec, kind) for b in range(w.shape[0])])
    if frac:
        out = np.frompyfunc(lambda x: x * 2.0**-frac, 1, 1)(out)
    return [wrap(out.astype(object), True)]


def op_l1pairs(node, ins, ctx):
    """L1PairFeatures: :func:`op_l1features`; with the spec's ``pairs: upper`` the traced N x N output is reduced to
    the unique pairs i <= j (wiring: every unordered pair is traced once either way)."""
    out = op_l1features(node, ins, ctx)[0]
    spec = l1features.spec_of_node(node)
    if spec.pairs == "full" or not is_traced(out):  # constants: features_np already gives the spec's pairs
        return [out]
    r = raw(out)
    n = r.shape[1]
    return [wrap(r.reshape(r.shape[0], n * n, r.shape[-1])[:, l1features.upper_pair_index(n)], True)]


# ------------------------------------------------------------------------------------------------ pair tables
def _bin_index(x, lo: float, e: int):
    """(x - lo) * 2^-e floored: the table index of a pair feature before the clip (the ROM clips). The floor is a
    truncation of x to the bin grid 2^e (lo is a multiple of it), then a constant subtraction and a shift."""
    if not isinstance(x, FixedVariable):
        return int(np.floor((float(x) - lo) * 2.0**-e))
    k, i, f = x.kif
    if f > -e:  # floor to the bin grid: |result| <= |x| + 2^e, so max(i, e) + 1 integer bits never wrap
        x = x.quantize(k, max(i, e, 0) + 1, -e, "WRAP", "TRN")
    return (x - lo) * 2.0**-e


def op_pairtable(node, ins, ctx):
    """L1PairTable (docs/interaction.md): per pair row and feature an index on the bin grid, per head one ROM read
    per feature (the table of that feature and head, clipped to its range inside the ROM), an exact adder tree."""
    spec = pairtable.spec_of_node(node)
    where = f"L1PairTable node {node.name!r}"
    x, table = ins[0], _const(ins[1], node, "the table")
    pairtable.check_shapes(np.shape(raw(x)), table.shape, spec, where)
    if not is_traced(x):
        return [pairtable.pairtable_np(np.asarray(x), table, spec, where)]
    tfrac = next((f for f in range(0, 48) if np.array_equal(table * 2.0**f, np.round(table * 2.0**f))), None)
    if tfrac is None:
        raise ConversionError(f"{where}: the table is not on a power-of-two grid")
    tint = np.round(table * 2.0**tfrac).astype(np.int64)
    xr = raw(x)
    out = np.empty(xr.shape[:-1] + (spec.n_heads,), dtype=object)
    for pos in np.ndindex(*xr.shape[:-1]):
        idx = [_bin_index(xr[pos + (f,)], spec.lo[f], spec.exp[f]) for f in range(spec.n_features)]
        for h in range(spec.n_heads):
            s = tree_sum([_int_lookup(idx[f], tint[f, h]) for f in range(spec.n_features)])
            out[pos + (h,)] = s * 2.0**-tfrac if tfrac else s
    return [wrap(out, True)]


#: op_type -> handler(node, inputs, ctx) -> outputs.  The set of l1tagger.contract.opset.SUPPORTED_OPS (tested).
OP_HANDLERS: dict[str, Callable] = {
    "Quant": op_quant,
    "MatMul": op_matmul,
    "Add": op_add,
    "Mul": op_mul,
    "Relu": op_relu,
    "FirmwareSoftmax": op_firmware_softmax,
    **{op: op_l1features for op in l1features.OP_TYPES},
    l1features.PAIR_OP: op_l1pairs,
    pairtable.PAIR_TABLE_OP: op_pairtable,
    "Concat": op_concat,
    **{op: op_layout for op in sorted(SINGLE_INPUT_LAYOUT_OPS)},
}


# ------------------------------------------------------------------------------------------------ checks
#: da4ml 0.6.0 stores a constant as data * 2^-f with f searched in (-32, 32] (``trace.fixed_variable._const_f``)
CONST_F_RANGE = (-31, 32)


def _natural_frac(value: float) -> int:
    """The smallest f with value * 2^f an integer (value != 0), computed exactly."""
    from fractions import Fraction

    fr = Fraction(value)
    num, den = fr.numerator, fr.denominator
    if den > 1:
        return den.bit_length() - 1  # den is a power of two for any float
    return -((num & -num).bit_length() - 1)


def check_constants(comb, what: str = "the traced logic") -> None:
    """Fail if a constant of ``comb`` lies outside what da4ml can represent exactly.

    Values are kept in each operation's hardware domain (value / scale factor); a constant whose lowest set bit in
    that domain is beyond 2^+-31 is truncated to da4ml's range and the multiplexer or comparator using it is built
    wrong, in its interpreters and in the Verilog alike. l1tagger's lowering avoids such constants; this check
    keeps any that slip through from becoming silently wrong RTL.
    """
    lo, hi = CONST_F_RANGE
    for i, op in enumerate(comb.ops):
        if op.opcode != 5 or op.qint.min == 0:
            continue
        f = _natural_frac(op.qint.min)
        if not lo <= f <= hi:
            raise ConversionError(
                f"{what}: constant {op.qint.min!r} (operation {i}) needs 2^{-f} resolution in its hardware domain, "
                f"outside da4ml's 2^{-hi}..2^{-lo}; the RTL would not be bit-exact"
            )


# ------------------------------------------------------------------------------------------------ driver
def load_model(model) -> onnx.ModelProto:
    """A ModelProto from a path, an onnx ModelProto or a qonnx ModelWrapper, re-batched to batch 1."""
    from qonnx.core.modelwrapper import ModelWrapper

    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise ConversionError(f"no ONNX file at {path}")
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # onnx raises DecodeError and friends
            raise ConversionError(f"{path} is not a readable ONNX model: {exc}") from exc
    w = model if isinstance(model, ModelWrapper) else ModelWrapper(model)
    from l1tagger.export.reference import graph_batch_size, with_batch_size

    if graph_batch_size(w) != 1:
        w = with_batch_size(w, 1)
    return w.model


def _shape_of(vi) -> tuple[int, ...]:
    dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    if any(d <= 0 for d in dims[1:]):
        raise ConversionError(f"tensor {vi.name!r} has a non-static shape {dims}")
    return tuple(dims[1:])


def lower_model(model, progress: bool = False, probes: list[str] | None = None,
                fuse_topk: bool = True) -> LoweredModel:
    """Interpret the graph on da4ml traced arrays; ConversionError naming the first unsupported node.

    probes: tensor names to expose as outputs instead of the graph outputs (to localise a mismatch).
    fuse_topk: compute FirmwareSoftmax(topk) -> Quant -> MatMul(A, V) chains fused (k-slot selection network,
    k-wide softmax, k-row multiplexed A V; docs/firmware_softmax.md); False builds the N-wide rank network and
    product (the unfused design, for comparisons). A probed tensor of a chain keeps that chain unfused.

    Tracing runs in :func:`l1tagger.rtl.traced.exact_decimal`: da4ml's decimal bookkeeping of ranges and scale
    factors is exact, and a node whose tracing would round it fails with its name.
    """
    with exact_decimal():
        return _lower_model(model, progress, probes, fuse_topk)


def _lower_model(model, progress: bool, probes: list[str] | None, fuse_topk: bool = True) -> LoweredModel:
    m = load_model(model)
    g = m.graph
    consts = {i.name: numpy_helper.to_array(i).astype(np.float64) if numpy_helper.to_array(i).dtype.kind == "f"
              else numpy_helper.to_array(i) for i in g.initializer}
    for node in g.node:  # fail early, naming the node, before any tracing
        if node.op_type not in OP_HANDLERS:
            raise ConversionError(
                f"node {node.name!r}: op {node.op_type!r} (domain {node.domain or 'ai.onnx'!r}) is not supported by "
                f"the da4ml RTL route; supported: {sorted(OP_HANDLERS)}"
            )
    ctx = LowerContext(m, consts, topk_fusions=topk_attention_fusions(g, consts, probes or ()) if fuse_topk else {})
    env: dict[str, object] = dict(consts)
    ports, raw_inputs = [], []
    consumers: dict[str, list] = {}
    for node in g.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    for vi in g.input:
        if vi.name in consts:
            continue
        shape = _shape_of(vi)
        x = FixedVariableArrayInput((1,) + shape, hwconf=HWCONF)
        raw_inputs.append(x)
        users = consumers.get(vi.name, [])
        quants = [u for u in users if u.op_type == "Quant" and u.input[0] == vi.name]
        if users and len(quants) == len(users):
            specs = {quant_spec(q, [None] + [consts.get(i) for i in q.input[1:4]]) for q in quants}
            if len(specs) != 1:
                raise ConversionError(f"graph input {vi.name!r} is read by Quant nodes with different grids "
                                      f"{sorted(map(str, specs))}")
            q = specs.pop()
            ports.append(InputPort(vi.name, shape, q.bits, q.frac, q.signed, q.narrow, rounding=q.rounding))
            env[vi.name] = x
        else:
            ports.append(InputPort(vi.name, shape, 1, 0, False, quantized=False))
            env[vi.name] = x.quantize(0, 1, 0, "WRAP", "TRN")
    counts: dict[str, int] = {}
    node_vars: list[tuple[str, list]] = []  # (node, the variables it output): da4ml's cost per node
    nodes = list(g.node)
    if progress:
        from l1tagger.utils.progress import progress as progress_bar

        nodes = progress_bar(nodes, desc="lowering to da4ml", unit="node")
    for node in nodes:
        ins = [env[i] if i else None for i in node.input]
        if any(v is None and name for v, name in zip(ins, node.input)):
            raise ConversionError(f"node {node.name!r}: an input is not produced by any earlier node")
        try:
            outs = OP_HANDLERS[node.op_type](node, ins, ctx)
        except (ConversionError, ConfigError):
            raise
        except decimal.Inexact as exc:
            raise ConversionError(
                f"node {node.name!r} ({node.op_type}): da4ml's fixed-point bookkeeping would lose exactness here "
                f"(decimal rounding at {decimal.getcontext().prec} digits); the RTL would not be bit-exact"
            ) from exc
        except (AssertionError, ValueError, TypeError, IndexError) as exc:
            raise ConversionError(f"node {node.name!r} ({node.op_type}) could not be lowered: {exc}") from exc
        for name, v in zip(node.output, outs):
            env[name] = v
        node_vars.append((node.name, [x for v in outs for x in traced_vars(v)]))
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    outs, oports = [], []
    for name in probes or [vo.name for vo in g.output]:
        if name not in env:
            raise ConversionError(f"probe {name!r} is not a tensor of the graph")
        v = env[name]
        if not is_traced(v):
            raise ConversionError(f"graph output {name!r} does not depend on any input")
        oports.append(OutputPort(name, tuple(v.shape[1:])))
        outs.append(v)
    inp = np.concatenate([x._vars.ravel() for x in raw_inputs])
    out = np.concatenate([o._vars.ravel() for o in outs])
    comb = comb_trace(list(inp), list(out), keep_dead_inputs=True)
    check_constants(comb)
    return LoweredModel(comb=comb, inputs=ports, outputs=oports, n_nodes=len(g.node), op_counts=counts,
                        l1_features=ctx.l1_features,
                        node_cost=node_costs(node_vars, [v for v in out if isinstance(v, FixedVariable)]))
