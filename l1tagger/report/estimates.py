"""Resource and latency estimates from a cleaned QONNX graph, for when no synthesis tool has run.

Everything here is an **estimate** (``source: "estimate"``) computed by the rules in :data:`RULES`, which are
written into every output next to the numbers. A synthesis report (Vitis HLS, Vivado, Yosys) replaces these
numbers where it exists (``l1tagger.report.page``), and the page says which is which.

Widths come from the ``Quant`` nodes (bit width, signedness, decoded by the contract's
:func:`l1tagger.contract.quant.decode_quant`); a tensor that flows through layout ops (Transpose, Reshape, ...)
keeps its width, and layout shapes follow the contract's layout semantics (:mod:`l1tagger.contract.opset`). A
tensor is *constant* if it is a Quant of an initializer (a weight), folded with the node's own rounding mode.
One estimator per op type in :data:`OP_ESTIMATORS` (the contract's op set).

Per layer (io_parallel, everything unrolled; reuse factor R divides the multipliers and sets II = R):

* MatMul ``A (..., K) @ B (K, M)``: products = outputs x K; EBOPs = products x w_a x w_b (HGQ's effective bit
  operations). For a constant operand (weights) everything is counted from the constants the graph holds
  (:func:`constant_product_cost`): EBOPs from the bits each constant really uses (zeros free), LUTs from the
  nonzero canonical-signed-digit count of each output's constants (shift-and-add, as da4ml builds it).
* Mul (masks, elementwise): products = output elements.
* FirmwareSoftmax (``spec`` attribute): max tree, subtract, exp table, sum tree, inverse table, e x r products,
  plus the rank comparators of top-k; tables sized from the spec. A top-k softmax feeding an attention x value
  MatMul is costed fused (selection network, k-wide softmax, k products per output: RULES, top-k attention).
* L1ParticleFeatures / L1PairFeatures / L1WordMask (features of L1 words computed on chip, ``spec`` attribute):
  word unpacking, seed comparator tree, sums, floor-log codes (comparators + multiplexers), log / softplus ROMs,
  the squares of the pair angles, adders, saturation; the mask is wiring.
* Add, Relu: 1 LUT per output bit per element.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from l1tagger.contract import l1features, pairtable
from l1tagger.contract.opset import LAYOUT_OPS, concat, layout, layout_shape
from l1tagger.contract.quant import attribute, constant_bits, csd_digits, decode_quant
from l1tagger.contract.softmax import spec_of_node, topk_attention_fusions
from l1tagger.errors import ConfigError, ConversionError
from l1tagger.report.blocks import block_costs, node_blocks


@dataclass(frozen=True)
class MappingRules:
    """Tunable constants of the estimate (defaults documented in RULES).

    var_dsp_min_width:   a product of two variables whose operands are both wider than this goes to DSP48E2
    dsp_a_bits, dsp_b_bits: DSP48E2 multiplier port widths (27 x 18); wider products cascade
    lut_per_ebop:        LUTs per EBOP for LUT-mapped products (HGQ: EBOPs ~ LUT + 55 DSP after P&R)
    ebops_per_dsp:       the 55 of that relation, used for the single 'cost' number
    t_add_ns:            delay of one adder/comparator level incl. routing; levels per cycle = floor(T / t_add)
    lutram_max_bits:     tables up to this many bits are LUT ROMs (64x1 bits per LUT6 per read port), larger BRAM18
    bram18_bits:         bits in one BRAM18 (18 Kb); a BRAM is dual ported: one copy serves 2 parallel reads
    reuse_factor:        hls4ml reuse factor (1 = fully parallel, II = 1)
    """

    var_dsp_min_width: int = 8
    dsp_a_bits: int = 27
    dsp_b_bits: int = 18
    lut_per_ebop: float = 1.0
    ebops_per_dsp: float = 55.0
    t_add_ns: float = 1.0
    lutram_max_bits: int = 4096
    bram18_bits: int = 18432
    reuse_factor: int = 1


RULES = [
    "EBOPs = sum over multiplications of w_a * w_b (HGQ effective bit-operations): an activation's width is its "
    "Quant node's bit width; a constant's width is the bits it really uses in the exported graph (constant_bits: "
    "|k| = m 2^e, m odd -> bit_length(m); a zero constant costs nothing, a power of two 1 bit).",
    "Products with a constant operand (x @ W) -> shift-and-add in LUTs (distributed arithmetic, as da4ml generates): "
    "output j sums T_j = sum_i csd(W_ij) shifted copies of x (csd = nonzero digits of the canonical signed-digit "
    "form), T_j - 1 adders of bits(x) LUTs each: LUT = lut_per_ebop * rows * bits(x) * sum_j max(T_j - 1, 0). "
    "The sum's width is bits(x) + bit_length(max_j sum_i |W_ij|) on the constants' grid.",
    "Products of two variables with both widths > var_dsp_min_width -> DSP48E2 (27x18; ceil(w1/27)*ceil(w2/18) "
    "DSPs each); narrower ones -> LUT = w_a*w_b plus an adder of (w_a+w_b) bits per accumulation.",
    "Add, Relu, comparators, subtractors: 1 LUT per output bit per element; an Add of a constant (a bias): 1 LUT "
    "per bit of max(bits(x), bits the constant uses) + 1 per nonzero constant, zero constants free; layout ops and "
    "Quant: free.",
    "Tables (softmax exp / inverse): depth*width <= lutram_max_bits -> LUT ROM, ceil(depth/64)*width LUT per parallel "
    "read; larger -> BRAM18, ceil(depth*width/18432) per copy, one copy per 2 parallel reads.",
    "Latency per layer (io_parallel): products 1 cycle; an adder/comparator tree of n inputs has ceil(log2 n) levels, "
    "floor(T_clk / t_add_ns) levels per cycle (>= 1); LUT ROM 1 cycle, BRAM 2 cycles; Add/Relu/Mul 1 cycle; layout 0. "
    "Total latency = critical path of the graph (parallel branches overlap); reuse factor R adds R-1 cycles per "
    "MatMul and divides its multipliers by R.",
    "II = reuse factor (io_parallel pipelines every layer; R = 1 gives a new event every cycle).",
    "Graph inputs without a Quant node: only the particle mask, taken as 1 bit unsigned (0/1).",
    "Folding: an Add, Mul, MatMul or Relu of constants, and a MatMul by an all-zero (pruned) matrix, is a constant "
    "and costs nothing; what it feeds sees a constant (a layer whose weights were all trained to 0 bits leaves only "
    "its bias).",
    "FF not estimated.",
    "Top-k attention (FirmwareSoftmax(topk=k) -> idempotent Quant -> MatMul(A, V), fused as the firmware builds it, "
    "docs/firmware_softmax.md): per row of N keys, keys N x (in_bits+1) LUT; selection k rounds of an argmax tree, "
    "each (N-1) comparators of in_bits+1 LUT + 2:1 key and index multiplexers (2 bits per LUT6: (in_bits+1 + "
    "ceil(log2 N)) / 2 LUT), and (k-1) clears of the winner (N x (in_bits+2) / 2); k-1 exp reads (slot 0 is "
    "EXP[0]), one inverse read, k e*r products, a k-term sum; the A V product k products per output plus an "
    "N-way multiplexer per slot (a LUT6 is a 4:1 multiplexer: ceil((N-1)/3) LUT per bit). Latency k x ceil(log2 N) "
    "comparator levels for the selection. With fuse_topk=False the unfused design: all-pairs rank network, N-wide "
    "softmax and product.",
    "L1 word features (L1ParticleFeatures, L1PairFeatures; L1WordMask is wiring): unpacking 1 LUT per word bit; "
    "seed tree (N-1) comparators + multiplexers; a floor-log code of a W-bit integer (W-M-1) stages, each an OR "
    "of the bits above 2^k (1 LUT per 6 bits) and a multiplexer of the code width; log/softplus ROMs as tables "
    "above, one read per particle / unordered pair; pair angle squares as variable products above; adders, "
    "saturation and masking 1 LUT per bit; pairs computed once per unordered pair N(N+1)/2; the pair sets without "
    "an angle log (pair_set words / part_codes) take the codes of the angle differences and no ROM. In the totals.",
    "Pair features off chip (graphs with a `pair` input, model.inputs: features): ln kT, ln z, ln Delta, ln m^2 "
    "are firmware inputs computed outside it: not costed, and not deployable on a trigger; a model on L1 words "
    "(model.inputs: l1words) computes them on chip, counted in the totals and in the blocks.",
    "Blocks (l1tagger.report.blocks): per-layer numbers summed by block: particle features, pair features, "
    "interaction U (nodes fed by the pair features alone), softmax, particle path (the rest).",
    "L1PairTable (U from tables of the quantized pair features, docs/interaction.md): no multiplication (0 EBOPs); "
    "per pair row and feature an index of 3 x bits(x) LUT (subtraction, clip) and one read of a 2^bits x (H x t) "
    "bit ROM (t = the entries' width; ROM rule above); per head F - 1 adders of t + 2 bits.",
]


@dataclass
class LayerEstimate:
    name: str
    op: str
    products: int = 0
    widths: str = ""
    ebops: float = 0.0
    dsp: float = 0.0
    lut: float = 0.0
    bram18: float = 0.0
    cycles: int = 0
    rule: str = ""


# ------------------------------------------------------------------------------------------- graph reading
@dataclass
class _T:
    shape: tuple[int, ...] | None = None
    bits: int | None = None
    signed: bool = True
    const: np.ndarray | None = None  # integer values of a quantized constant (an initializer: its values)
    real: np.ndarray | None = None  # values of a constant tensor: an initializer, or what folds from constants


def _load(model):
    import onnx

    if isinstance(model, (str, Path)):
        if not Path(model).exists():
            raise ConfigError(f"model file {model} does not exist")
        model = onnx.load(str(model))
    if not hasattr(model, "graph"):
        raise ConfigError(f"expected an ONNX ModelProto or a path, got {type(model).__name__}")
    return model


def _shape_of(vi) -> tuple[int, ...] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for i, d in enumerate(t.shape.dim):
        dims.append(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1)  # symbolic batch -> 1
    return tuple(dims)


def _consts_after_data(node, consts: dict) -> list:
    """Values of the node's inputs after the data input (None when absent or not constant)."""
    return [consts.get(n) if n else None for n in node.input[1:]]


def _propagate_shape(node, ins: list[_T], consts: dict):
    op = node.op_type
    s = [t.shape for t in ins]
    if op in LAYOUT_OPS:
        if op == "Concat":
            return layout_shape(node, s)
        return layout_shape(node, s[:1], _consts_after_data(node, consts))
    if op in ("Quant", "Relu", "FirmwareSoftmax"):
        return s[0]
    if op in ("Add", "Mul"):
        return tuple(np.broadcast_shapes(s[0], s[1]))
    if op in l1features.OP_TYPES:
        return l1features.output_shape(op, s[0], l1features.spec_of_node(node))
    if op == pairtable.PAIR_TABLE_OP:
        return pairtable.output_shape(s[0], pairtable.spec_of_node(node))
    if op == "MatMul":
        return tuple(np.broadcast_shapes(s[0][:-2], s[1][:-2])) + (s[0][-2], s[1][-1]) if len(s[1]) > 1 \
            else s[0][:-1]
    raise ConversionError(f"estimate: node {node.name!r}: op {op!r} is not in the l1tagger graph contract")


# ------------------------------------------------------------------------------------------- cost rules
def _levels(n: int) -> int:
    return int(math.ceil(math.log2(n))) if n > 1 else 0


def _tree_cycles(n: int, period_ns: float, rules: MappingRules) -> int:
    per_cycle = max(1, int(period_ns // rules.t_add_ns))
    return int(math.ceil(_levels(n) / per_cycle))


def _dsp_per_product(wa: int, wb: int, rules: MappingRules) -> int:
    hi, lo = max(wa, wb), min(wa, wb)
    return int(math.ceil(hi / rules.dsp_a_bits) * math.ceil(lo / rules.dsp_b_bits))


def _var_products(n: int, wa: int, wb: int, acc_terms: int, rules: MappingRules) -> tuple[float, float, str]:
    """(dsp, lut, mapping) of n variable x variable products feeding accumulations of acc_terms terms."""
    if min(wa, wb) > rules.var_dsp_min_width:
        return n * _dsp_per_product(wa, wb, rules), 0.0, "DSP48E2"
    adders = n * (acc_terms - 1) / max(acc_terms, 1) * (wa + wb)
    return 0.0, n * wa * wb * rules.lut_per_ebop + adders, "LUT"


def _table(depth: int, width: int, reads: int, rules: MappingRules) -> tuple[float, float, int, str]:
    """(lut, bram18, cycles, kind) for a ROM of depth x width read `reads` times in parallel."""
    if depth * width <= rules.lutram_max_bits:
        return reads * math.ceil(depth / 64) * width, 0.0, 1, "LUT ROM"
    return 0.0, math.ceil(reads / 2) * math.ceil(depth * width / rules.bram18_bits), 2, "BRAM18"


#: widths of graph inputs that carry no Quant node (the 0/1 particle mask): unsigned, this many bits
UNQUANTIZED_INPUT_BITS = {"mask": 1}


def estimate_graph(model, clock_mhz: float = 360.0, rules: MappingRules | None = None,
                   input_bits: dict[str, int] | None = None, fuse_topk: bool = True) -> dict:
    """Estimate per layer and in total. ``model``: ONNX ModelProto or path of a cleaned QONNX graph.

    input_bits: widths of graph inputs without a Quant node (default: ``mask`` is 1 bit); any other unquantized
    operand of an arithmetic node is an error naming the node.
    fuse_topk: cost FirmwareSoftmax(topk) -> Quant -> MatMul chains as the fused firmware builds them (RULES: top-k
    attention); False costs the unfused design (rank network, N-wide softmax and product).
    """
    rules = rules or MappingRules()
    input_bits = UNQUANTIZED_INPUT_BITS if input_bits is None else input_bits
    if clock_mhz <= 0:
        raise ConfigError(f"clock_mhz must be > 0, got {clock_mhz}")
    if rules.reuse_factor < 1:
        raise ConfigError(f"reuse_factor must be >= 1, got {rules.reuse_factor}")
    period = 1e3 / clock_mhz
    model = _load(model)
    from onnx import numpy_helper

    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(attribute(n, "value"))
    known_shapes = {vi.name: _shape_of(vi) for vi in list(g.input) + list(g.value_info) + list(g.output)}
    tensors: dict[str, _T] = {}
    for vi in g.input:
        if vi.name not in consts:
            bits = input_bits.get(vi.name)
            tensors[vi.name] = _T(shape=known_shapes.get(vi.name), bits=bits, signed=bits is None)
    for name, arr in consts.items():
        tensors[name] = _T(shape=tuple(arr.shape), const=np.asarray(arr), real=np.asarray(arr))
    ready: dict[str, int] = {name: 0 for name in tensors}  # tensor -> cycle when available
    fusions = topk_attention_fusions(g, consts) if fuse_topk else {}
    fusions = {**fusions, **{f.matmul.name: f for f in fusions.values()}}
    layers: list[LayerEstimate] = []
    for node in g.node:
        if node.op_type == "Constant":
            continue
        ins = []
        for name in node.input:
            if name == "":
                ins.append(_T())
                continue
            if name not in tensors:
                raise ConversionError(f"estimate: node {node.name!r} reads {name!r}, which no earlier node produces "
                                      "(graph not topologically sorted?)")
            ins.append(tensors[name])
        out = _T()
        try:
            out.shape = known_shapes.get(node.output[0]) or _propagate_shape(node, ins, consts)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConversionError(f"estimate: cannot infer the shape of node {node.name!r} ({node.op_type}): {exc}") \
                from None
        start = max((ready.get(n, 0) for n in node.input if n), default=0)
        fn = OP_ESTIMATORS.get(node.op_type)
        if fn is None:
            raise ConversionError(f"estimate: node {node.name!r}: op {node.op_type!r} is not in the l1tagger graph "
                                  "contract")
        est = None if _fold(node, ins, out) else fn(node, ins, out, _Ctx(rules, period, consts, fusions))
        cycles = est.cycles if est else 0
        for name in node.output:
            tensors[name] = out
            ready[name] = start + cycles
        if est:
            layers.append(est)
    outs = [o.name for o in g.output]
    latency = max((ready.get(o, 0) for o in outs), default=0)
    total = {k: float(sum(getattr(l, k) for l in layers)) for k in ("ebops", "dsp", "lut", "bram18")}
    total["products"] = int(sum(l.products for l in layers))
    total.update(
        ff=None,
        uram=0.0,
        latency_cycles=int(latency),
        latency_ns=latency * period,
        ii_cycles=int(rules.reuse_factor),
        cost=total["lut"] + rules.ebops_per_dsp * total["dsp"],
    )
    return {
        "source": "estimate",
        "clock_MHz": clock_mhz,
        "rules": RULES,
        "mapping": asdict(rules),
        "layers": [asdict(l) for l in layers],
        "total": total,
        "blocks": block_costs(layers, node_blocks(model), rules.ebops_per_dsp),
        "pair_features": ("off chip (graph input `pair`: not costed, not deployable)"
                          if any(vi.name == "pair" for vi in g.input) else
                          "on chip (L1PairFeatures, in the totals)" if any(n.op_type == l1features.PAIR_OP
                                                                           for n in g.node) else None),
    }


# ------------------------------------------------------------------------------------------- per-op estimators
@dataclass
class _Ctx:
    rules: MappingRules
    period: float
    consts: dict
    #: fused FirmwareSoftmax(topk) -> Quant -> MatMul chains (contract topk_attention_fusions), by softmax and by
    #: MatMul node name
    topk_fusions: dict = field(default_factory=dict)


def _new(node) -> LayerEstimate:
    return LayerEstimate(name=node.name or node.output[0], op=node.op_type)


#: arithmetic ops folded when every input is constant (no logic: the synthesis tool folds them too)
FOLDED_OPS = {"Add": np.add, "Mul": np.multiply, "MatMul": np.matmul, "Relu": lambda x: np.maximum(x, 0.0)}


def _fold(node, ins, out) -> bool:
    """Constant-fold ``node`` (RULES: folding) into ``out.real``; True when it folded (it costs nothing)."""
    fn = FOLDED_OPS.get(node.op_type)
    if fn is None:
        return False
    data = [t for t, name in zip(ins, node.input) if name]
    if all(t.real is not None for t in data):
        out.real = np.asarray(fn(*[t.real for t in data]), np.float64)
        return True
    if node.op_type == "MatMul" and any(t.real is not None and t.real.size and not np.any(t.real) for t in data) \
            and out.shape:
        out.real = np.zeros(out.shape)  # a product with an all-zero (pruned) matrix is zero whatever x is
        return True
    return False


def _est_quant(node, ins, out, ctx):
    values = [ctx.consts.get(n) for n in node.input[1:4]]
    if len(values) != 3 or any(v is None for v in values):
        raise ConversionError(f"estimate: Quant node {node.name!r} has a non-constant scale, zero point or bit width")
    spec = decode_quant(node, *values, error=ConversionError)
    out.bits, out.signed = spec.bits, spec.signed
    if ins[0].real is not None:  # integer values of a quantized constant, rounded by the node's own mode
        out.real = spec.apply(ins[0].real)
        out.const = out.real * 2.0**spec.frac
    return None


def _est_layout(node, ins, out, ctx):
    data = ins if node.op_type == "Concat" else ins[:1]
    widths = [t.bits for t in data if t.bits is not None]
    out.bits, out.signed = (max(widths) if widths else None), any(t.signed for t in data)
    for key in ("const", "real"):
        if all(getattr(t, key) is not None for t in data):
            vals = [getattr(t, key) for t in data]
            setattr(out, key, concat(node, vals) if node.op_type == "Concat" else
                    layout(node, vals[0], _consts_after_data(node, ctx.consts)))
    return None


def _est_matmul(node, ins, out, ctx):
    est = _new(node)
    f = ctx.topk_fusions.get(node.name)
    if f is not None and f.matmul.name == node.name and ins[0].shape and 0 < f.topk < ins[0].shape[-1]:
        _topk_product(est, f.topk, ins, out, ctx.rules, ctx.period)
    else:
        _matmul(est, node, ins, out, ctx.rules, ctx.period)
    return est


def _est_mul(node, ins, out, ctx):
    est = _new(node)
    _mul(est, node, ins, out, ctx.rules)
    return est


def _est_add_relu(node, ins, out, ctx):
    est = _new(node)
    n = int(np.prod(out.shape[1:]))
    consts = [t for t in ins if t.const is not None]
    if node.op_type == "Add" and len(consts) == 1:  # a bias: the bits it really uses, zeros free
        var = next(t for t in ins if t.const is None)
        c = constant_bits(np.broadcast_to(consts[0].const, out.shape).reshape(out.shape[0], -1)[0])
        w = np.where(c > 0, np.maximum(c, var.bits or 0) + 1, 0)
        est.lut, est.cycles, est.widths = float(w.sum()), 1, f"{int(w.max()) if w.size else 0} bit"
        est.rule = (f"{n} elements + constant ({int(np.count_nonzero(c))} nonzero): 1 LUT per bit of "
                    f"max(bits(x), bits of the constant) + 1, zero constants free")
        out.bits = max(var.bits or 0, int(c.max()) if c.size else 0) + 1
        return est
    w = max(t.bits or 0 for t in ins if t.shape is not None) + (1 if node.op_type == "Add" else 0)
    est.lut, est.cycles, est.widths = n * w, 1, f"{w} bit"
    est.rule = f"{n} elements x {w} bits -> 1 LUT per bit"
    out.bits = w
    return est


def _est_softmax(node, ins, out, ctx):
    est = _new(node)
    f = ctx.topk_fusions.get(node.name)
    if f is not None and f.softmax.name == node.name and ins[0].shape and 0 < f.topk < ins[0].shape[-1]:
        _topk_softmax(est, node, ins, out, ctx.rules, ctx.period)
    else:
        _softmax(est, node, ins, out, ctx.rules, ctx.period)
    return est


def _flog_lut(width: int, m: int) -> int:
    """A floor-log code of a width-bit integer: per stage k = m+1 .. width-1 the test x >= 2^k (an OR of the
    width - k bits above 2^k: one LUT6 per 6 of them) and a multiplexer of the code's bits. (Counting a full
    width-bit comparator per stage charged 2-3x da4ml's cost of the same logic: 162 against ~57 LUT for a 12-bit
    code with m = 2, tests/test_l1words.py.)"""
    bits = l1features.n_codes(width, m).bit_length()
    return sum(bits + -(-(width - k) // 6) for k in range(m + 1, width))


def _est_l1features(node, ins, out, ctx):
    """Features of L1 words computed on chip (RULES: the L1 word features entry)."""
    spec = l1features.spec_of_node(node)
    kind = l1features.kind_of(node.op_type)
    signed, bits, _ = l1features.output_grid(spec, kind)
    out.bits, out.signed = bits, signed
    if kind == "mask":
        return None  # the valid bit, wiring
    rules, fmt, m = ctx.rules, spec.format, spec.log_mantissa_bits
    n = int(ins[0].shape[-2])
    pt, eta, phi = (fmt.field(f).bits for f in ("pt", "eta", "phi"))
    t = spec.tables()
    tbits = lambda name: int(np.abs(t[name]).max()).bit_length() + 1  # noqa: E731 - signed entries
    est = _new(node)
    lut = n * (pt + eta + phi + 3)  # padding: fields masked by the valid bit
    parts = [f"unpack {lut} LUT"]
    depth = l1features.n_codes(pt, m)  # the codes a pt word reaches
    lp_lut, lp_bram, lp_cyc, lp_kind = _table(depth, tbits("logpt"), n, rules)
    lut += n * _flog_lut(pt, m) + lp_lut
    bram = lp_bram
    parts.append(f"{n} pt logs (code + {depth}-entry {lp_kind})")
    wrap = 4 * (phi + 1)  # two comparators, two adders
    if kind == "particle":
        seed = (n - 1) * (pt + 1 + eta + phi)  # comparator + multiplexers of the seed's eta/phi per tree node
        s_lut, s_bram, _, _ = _table(len(t["logpt"]), tbits("logpt"), 1, rules)
        jet = (n - 1) * spec.sum_code_bits + _flog_lut(spec.sum_code_bits, m) + s_lut
        feats = n * spec.n_features * 4 * bits + n * (eta + 1 + wrap)  # subtract, saturate, mask; deta, dphi
        lut += seed + jet + feats
        bram += s_bram
        parts.append(f"seed tree {seed} LUT, jet pt sum + log {jet:.0f} LUT, {spec.n_features} features x {n} "
                     f"{feats} LUT")
        est.cycles = _tree_cycles(n, ctx.period, rules) + lp_cyc + 3
    else:
        pairs = n * (n + 1) // 2
        w_de, w_dp = eta + 1, (spec.pi - 1).bit_length() + 1
        lw = tbits("logpt") + 1
        if spec.pair_set in l1features.CODE_PAIR_SETS:  # no angle log, no ROM: differences, codes, min / |diff|
            mc = spec.code_mantissa_bits
            per_pair = w_de + wrap + w_de + w_dp + 2 * lw + 2 * (lw + 1) + 3 * 4 * bits
            if spec.pair_set == "words":  # the codes of |deta| and |dphi|
                per_pair += _flog_lut(spec.dabs_bits, mc) + _flog_lut(spec.pi.bit_length(), mc)
                what = f"|deta|, |dphi| and their {mc}-bit-mantissa codes, min / |difference| of the pt logs"
            else:  # max / min / half-adder of the octagonal distance, its code, K c shift-add, two adders
                per_pair += (2 * (spec.dabs_bits + 1) + spec.dist_bits + _flog_lut(spec.dist_bits, mc)
                             + 3 * (lw + 2))
                what = (f"octagonal distance of |deta|, |dphi|, its {mc}-bit-mantissa code, ln kT / ln m^2 by "
                        f"shift-adds of K = {spec.code_step}, min / |difference| of the pt logs")
            lut += pairs * per_pair
            est.dsp, est.products, est.ebops, est.widths = 0.0, 0, 0.0, "no products"
            parts.append(f"{pairs} unordered pairs ({spec.pair_set}): {what}, saturation (no angle log, no ROM)")
            est.cycles = lp_cyc + 1 + 1 + 1
        else:  # ParT's set: the angle log by the spec's delta
            sp_lut, sp_bram, _, _ = _table(len(t["softplus"]), tbits("softplus"), pairs, rules)
            # shared by both angle methods: deta, min / |L_i - L_j| / adders of lnkt, lnz, lnm2, saturation and mask
            per_pair = w_de + wrap + 3 * lw + 4 * (lw + 2) + 3 * 4 * bits
            if spec.delta == "d2":  # two exact squares, the wide code of D2 and the LOGDR ROM
                d_lut, d_bram, d_cyc, d_kind = _table(len(t["logdr"]), tbits("logdr"), pairs, rules)
                dsp, sq_lut, sq_kind = 0.0, 0.0, "LUT"
                for w in (w_de, w_dp):
                    d, lq, sq_kind = _var_products(pairs, w, w, 2, rules)
                    dsp, sq_lut = dsp + d, sq_lut + lq
                per_pair += spec.d2_bits + _flog_lut(spec.d2_bits, m)
                lut += sq_lut + d_lut
                est.products = 2 * pairs
                est.ebops = float(pairs * (w_de * w_de + w_dp * w_dp))
                est.widths = f"{w_de}x{w_de}, {w_dp}x{w_dp}"
                angle = f"squares -> {sq_kind}, D2 code + {len(t['logdr'])}-entry {d_kind}"
            else:  # lse: |deta|, |dphi|, their narrow codes and LOGABS ROMs, |a - b|, max, HALFSP ROM, adder
                w_ab = tbits("logabs") + 1
                a_lut, d_bram, d_cyc, d_kind = _table(len(t["logabs"]), tbits("logabs"), 2 * pairs, rules)
                h_lut, h_bram, _, _ = _table(len(t["halfsp"]), tbits("halfsp"), pairs, rules)
                dsp = 0.0
                per_pair += (w_de + w_dp + _flog_lut(spec.dabs_bits, m) + _flog_lut((spec.pi).bit_length(), m)
                             + 3 * (w_ab + 1))
                lut += a_lut + h_lut
                d_bram += h_bram
                est.products, est.ebops, est.widths = 0, 0.0, "no products"
                angle = (f"|deta|, |dphi| codes + 2 reads of a {len(t['logabs'])}-entry {d_kind}, max + "
                         f"{len(t['halfsp'])}-entry half-softplus ROM")
            lut += pairs * per_pair + sp_lut
            bram += d_bram + sp_bram
            est.dsp = dsp
            parts.append(f"{pairs} unordered pairs ({spec.delta}): {angle}, softplus {len(t['softplus'])}-entry ROM, "
                         f"min/abs/adders, saturation")
            est.cycles = lp_cyc + 1 + 1 + d_cyc + 2
    est.lut, est.bram18 = float(lut), float(bram)
    est.rule = "; ".join(parts)
    return est


def _est_pairtable(node, ins, out, ctx):
    """L1PairTable (docs/interaction.md): per pair row and feature an index (constant subtraction of bits(x) LUTs,
    2 comparators of bits(x) for the clip, the shift is wiring), one ROM of 2^bits x (H x table bits) read per row
    and feature, per head an adder tree of F - 1 adders of table bits + 2; no multiplication (0 EBOPs)."""
    spec = pairtable.spec_of_node(node)
    x, t = ins[0], ins[1]
    if t.real is None:
        raise ConversionError(f"estimate: L1PairTable node {node.name!r}: the table input is not a constant")
    pairtable.check_shapes(x.shape, t.real.shape, spec, f"estimate: L1PairTable node {node.name!r}")
    frac = next((f for f in range(48) if np.array_equal(t.real * 2.0**f, np.round(t.real * 2.0**f))), 0)
    ints = np.round(t.real * 2.0**frac).astype(np.int64)
    tb = max(int(np.abs(ints).max()).bit_length(), 1) + 1
    xb = x.bits or 8
    rows = int(np.prod(x.shape[1:-1])) if x.shape else 1
    F, H = spec.n_features, spec.n_heads
    rom_lut, rom_bram, rom_cyc, kind = _table(spec.n_entries, H * tb, rows * F, ctx.rules)
    index_lut = rows * F * 3 * xb
    add_lut = rows * H * (F - 1) * (tb + 2)
    est = _new(node)
    est.lut, est.bram18 = float(index_lut + rom_lut + add_lut), float(rom_bram)
    est.widths = f"{xb} bit index, {tb} bit entries"
    est.cycles = 1 + rom_cyc + _tree_cycles(F, ctx.period, ctx.rules)
    est.rule = (f"{rows} pair rows x {F} features: index {index_lut} LUT, {spec.n_entries}-entry x {H * tb} bit "
                f"{kind} {rom_lut:.0f} LUT, {H} heads x {F - 1} adders {add_lut} LUT")
    out.bits, out.signed = tb + _levels(F), True
    return est


#: op_type -> estimator(node, inputs, out, ctx) -> LayerEstimate or None (free); the contract's op set (tested)
OP_ESTIMATORS = {
    "Quant": _est_quant,
    "MatMul": _est_matmul,
    "Mul": _est_mul,
    "Add": _est_add_relu,
    "Relu": _est_add_relu,
    "FirmwareSoftmax": _est_softmax,
    **{op: _est_l1features for op in l1features.OP_TYPES},
    "L1PairTable": _est_pairtable,
    **{op: _est_layout for op in sorted(LAYOUT_OPS)},
}


def constant_product_cost(k, contraction_axis: int, rows: int, x_bits: int) -> dict:
    """Cost of multiplying a variable of ``x_bits`` by the integer constants ``k`` (values on their grid, e.g. a
    weight matrix) and summing along ``contraction_axis``, each constant used ``rows`` times (RULES, constant
    products). Returns {"products", "nonzero", "ebops", "csd_digits", "adders", "lut"}:

    * EBOPs = rows * x_bits * sum constant_bits(k) (HGQ: a zero constant costs nothing, a power of two 1 bit);
    * shift-and-add: output j sums T_j = sum_i csd_digits(k_ij) shifted copies of x, T_j - 1 adders of x_bits LUTs
      each: LUT = rows * x_bits * sum_j max(T_j - 1, 0) (0.4 % from da4ml's cost over the 15 dense layers of a
      trained HGQ tagger, docs/cost.md).
    """
    k = np.asarray(k, dtype=np.float64)
    terms = csd_digits(k).sum(axis=contraction_axis)
    adders = int(np.maximum(terms - 1, 0).sum())
    nnz = int(np.count_nonzero(k))
    return {"products": rows * nnz, "nonzero": nnz, "ebops": float(rows * x_bits * int(constant_bits(k).sum())),
            "csd_digits": int(terms.sum()), "adders": rows * adders, "lut": float(rows * x_bits * adders)}


def _matmul(est, node, ins, out, rules, period):
    a, b = ins
    if a.bits is None or b.bits is None:
        raise ConversionError(f"estimate: MatMul {node.name!r} has an operand without a Quant width "
                              "(every tensor must be on a fixed-point grid)")
    K = a.shape[-1]
    n_out = int(np.prod(out.shape[1:]))
    R = rules.reuse_factor
    const = b.const if b.const is not None else a.const
    if const is not None:
        var, axis = (a, -2) if const is b.const else (b, -1)  # x @ W sums over W's rows, E @ x over E's columns
        outputs = const.size // const.shape[axis]
        cost = constant_product_cost(const, axis, n_out // max(1, outputs), var.bits)
        est.widths = f"{var.bits}x{_bits_max(const)}"
        est.products, est.ebops = cost["products"], cost["ebops"]
        est.lut = cost["lut"] * rules.lut_per_ebop / R
        est.rule = (f"constant weights ({cost['nonzero']} nonzero of {const.size}, {cost['csd_digits']} CSD digits) "
                    f"-> shift-and-add, {cost['adders']} adders x {var.bits} bit")
        # exact width of the sums: |x| < 2^(bits(x)) times the largest column sum of |k|, on the constants' grid
        out.bits = var.bits + int(np.abs(const).sum(axis=axis).max(initial=0)).bit_length()
    else:
        est.widths = f"{a.bits}x{b.bits}"
        est.products = n_out * K
        est.ebops = est.products * a.bits * b.bits
        dsp, lut, kind = _var_products(est.products, a.bits, b.bits, K, rules)
        est.dsp, est.lut = dsp / R, lut / R
        est.rule = f"activation x activation, K = {K} -> {kind}"
        out.bits = a.bits + b.bits + _levels(K)
    est.cycles = 1 + _tree_cycles(K, period, rules) + (R - 1)


def _bits_max(k) -> int:
    """The widest constant of ``k`` in bits it really uses (0 when all are zero)."""
    b = constant_bits(k)
    return int(b.max()) if b.size else 0


def _mul(est, node, ins, out, rules):
    a, b = ins
    if a.bits is None or b.bits is None:
        raise ConversionError(f"estimate: Mul {node.name!r} has an operand without a Quant width")
    n = int(np.prod(out.shape[1:]))
    est.widths, est.products, est.cycles = f"{a.bits}x{b.bits}", n, 1
    est.ebops = n * a.bits * b.bits
    if a.const is not None or b.const is not None:
        var, const = (a, b.const) if b.const is not None else (b, a.const)
        k = np.broadcast_to(np.asarray(const, np.float64), out.shape).reshape(out.shape[0], -1)[0]  # one jet
        est.ebops = float(var.bits * int(constant_bits(k).sum()))
        est.products = int(np.count_nonzero(k))
        est.lut = est.ebops * rules.lut_per_ebop
        est.rule = "elementwise by a constant -> LUT = EBOPs (bits each constant uses)"
    elif min(a.bits, b.bits) <= rules.var_dsp_min_width:
        est.lut = est.ebops * rules.lut_per_ebop
        est.rule = "elementwise (mask or narrow) -> LUT = EBOPs"
    else:
        est.dsp = n * _dsp_per_product(a.bits, b.bits, rules)
        est.rule = "elementwise variable x variable -> DSP48E2"
    out.bits = a.bits + b.bits


def _softmax(est, node, ins, out, rules, period):
    spec, topk = spec_of_node(node)
    shape = ins[0].shape
    N = shape[-1]
    rows = int(np.prod(shape[1:-1]))
    el = rows * N
    sum_bits = spec.sum_bits(N)
    exp_w = spec.exp_frac + 1
    parts = []
    lut = rows * (N - 1) * spec.in_bits + el * spec.in_bits  # max tree + subtract
    parts.append(f"max tree + subtract {lut:.0f} LUT")
    cyc = _tree_cycles(N, period, rules) + 1
    if topk:
        rank = el * (N - 1) * spec.in_bits + el * N  # pairwise comparators + popcount
        lut += rank
        cyc += 1 + _tree_cycles(N, period, rules)
        parts.append(f"top-{topk} ranks {rank:.0f} LUT")
    e_lut, e_bram, e_cyc, e_kind = _table(1 << spec.exp_table_bits, exp_w, el, rules)
    i_lut, i_bram, i_cyc, i_kind = _table(1 << spec.inv_table_bits, spec.inv_bits, rows, rules)
    lut += e_lut + i_lut + rows * (N - 1) * sum_bits
    parts.append(f"exp table {1 << spec.exp_table_bits}x{exp_w} {e_kind} x{el} reads, "
                 f"inverse table {1 << spec.inv_table_bits}x{spec.inv_bits} {i_kind} x{rows} reads")
    dsp, plut, kind = _var_products(el, exp_w, spec.inv_bits, 1, rules)
    lut += plut
    parts.append(f"e*r {el} products -> {kind}")
    cyc += e_cyc + _tree_cycles(N, period, rules) + i_cyc + 1
    est.products = el
    est.widths = f"{exp_w}x{spec.inv_bits}"
    est.ebops = el * exp_w * spec.inv_bits
    est.dsp, est.lut, est.bram18, est.cycles = dsp, lut, e_bram + i_bram, cyc
    est.rule = "; ".join(parts)
    out.bits, out.signed = spec.out_bits, False


def _mux_lut(n: int, width: int) -> int:
    """An n-way multiplexer of ``width`` bits: a LUT6 is a 4:1 multiplexer, ceil((n - 1) / 3) LUTs per bit."""
    return int(math.ceil(max(n - 1, 0) / 3)) * width


def _topk_softmax(est, node, ins, out, rules, period):
    """Selection and k-wide softmax of a fused top-k attention (RULES: top-k attention); the product is costed at
    the chain's MatMul (:func:`_topk_product`)."""
    spec, k = spec_of_node(node)
    shape = ins[0].shape
    N = shape[-1]
    rows = int(np.prod(shape[1:-1]))
    w = spec.in_bits + 1  # key u = q - in_min + 1, 0 for a dropped key
    ib = max(1, (N - 1).bit_length())
    keys = rows * N * w
    # per tree node a comparator (w LUT) and 2:1 multiplexers of the key and the index (2 bits per LUT6); per
    # clear a 2:1 multiplexer of the key and the winner bit
    select = rows * (k * (N - 1) * (w + (w + ib) / 2) + (k - 1) * N * (w + 1) / 2)
    exp_w = spec.exp_frac + 1
    e_lut, e_bram, e_cyc, e_kind = _table(1 << spec.exp_table_bits, exp_w, rows * (k - 1), rules)
    i_lut, i_bram, i_cyc, i_kind = _table(1 << spec.inv_table_bits, spec.inv_bits, rows, rules)
    tail = rows * ((k - 1) * w + (k - 1) * spec.sum_bits(k))  # subtract from slot 0, exact sum of k entries
    dsp, plut, kind = _var_products(rows * k, exp_w, spec.inv_bits, 1, rules)
    est.lut = float(keys + select + e_lut + i_lut + tail + plut)
    est.dsp, est.bram18 = dsp, e_bram + i_bram
    est.products, est.widths = rows * k, f"{exp_w}x{spec.inv_bits}"
    est.ebops = float(rows * k * exp_w * spec.inv_bits)
    est.cycles = 1 + k * _tree_cycles(N, period, rules) + e_cyc + _tree_cycles(k, period, rules) + i_cyc + 1
    est.rule = (f"fused top-{k} of {N}: keys {keys} LUT; selection {k} rounds of an argmax tree ({N - 1} comparators "
                f"+ key/index multiplexers) and {k - 1} clears {select} LUT; exp table {1 << spec.exp_table_bits}x"
                f"{exp_w} {e_kind} x{rows * (k - 1)} reads (slot 0 is EXP[0]), inverse {i_kind} x{rows} reads; "
                f"e*r {rows * k} products -> {kind}")
    out.bits, out.signed = spec.out_bits, False


def _topk_product(est, k: int, ins, out, rules, period):
    """A @ V of a fused top-k attention: per output k products with the selected value rows (an N-way multiplexer
    per slot) summed, instead of N products (RULES: top-k attention)."""
    a, b = ins
    if a.bits is None or b.bits is None:
        raise ConversionError(f"estimate: MatMul {est.name!r} has an operand without a Quant width")
    N = a.shape[-1]
    n_out = int(np.prod(out.shape[1:]))
    R = rules.reuse_factor
    mux = n_out * k * _mux_lut(N, b.bits)
    est.products = n_out * k
    est.widths = f"{a.bits}x{b.bits}"
    est.ebops = float(est.products * a.bits * b.bits)
    dsp, lut, kind = _var_products(est.products, a.bits, b.bits, k, rules)
    est.dsp, est.lut = dsp / R, (lut + mux) / R
    est.rule = (f"fused top-{k} attention x value: {k} of {N} rows selected per output ({N}-way multiplexers "
                f"{mux} LUT), {est.products} products -> {kind}")
    out.bits = a.bits + b.bits + _levels(k)
    est.cycles = 1 + 1 + _tree_cycles(k, period, rules) + (R - 1)


def estimate_to_json(estimate: dict) -> str:
    return json.dumps(estimate, indent=2)
