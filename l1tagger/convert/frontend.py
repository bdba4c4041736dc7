"""QONNX (l1tagger graph contract) -> hls4ml layer list of l1tagger extension layers.

Why not hls4ml's own ONNX frontend: its handlers for MatMul/Add/Quant/... are registered once and
``register_onnx_layer_handler`` refuses to replace them, and the stock path has the measured pitfalls of issue 5
(per-particle Dense, dropped bias, wrong bias broadcast, act x act MatMul silently dropped, whole-tensor Softmax,
default accumulator / input types, ignored ``bit_exact``). This frontend walks the cleaned graph once, with one
handler per op type (registry :data:`HANDLERS`), folds constant sub-graphs (weights -> Quant) in numpy, derives an
exact fixed-point type for every tensor (:mod:`l1tagger.convert.fixed`) and emits one extension layer per node;
``hls4ml.model.ModelGraph.from_layer_list`` then builds the model with hls4ml's flows and writers.

Any op without a handler raises :class:`ConversionError` naming the op and the node. Semantics come from the
torch-free contract (:mod:`l1tagger.contract`): the op set, Quant decoding and the rounding table (a Quant that
rounds with a mode ap_fixed cannot reproduce is refused, naming the node; constants are folded with qonnx's own
rounding function), the layout ops (applied to values when folding and to element indices for ``L1Permute`` /
``L1Concat`` tables), the softmax spec and the spec of the features computed on chip from L1 particle words
(``L1ParticleFeatures`` / ``L1WordMask`` / ``L1PairFeatures`` -> kernels ``l1w_*``, tables from the spec, their
digest in the generated config struct and in ``Frontend.feature_layers``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import onnx

from l1tagger.contract import l1features, pairtable
from l1tagger.contract.opset import SINGLE_INPUT_LAYOUT_OPS, concat, layout
from l1tagger.contract.quant import QuantSpec, decode_quant
from l1tagger.contract.softmax import spec_of_node, topk_attention_fusions
from l1tagger.convert import fixed as fx
from l1tagger.convert.fixed import FixedType
from l1tagger.errors import ConversionError

#: accumulations beyond this many LSBs would make the float32 QONNX reference inexact (docs/graph_contract.md)
FLOAT32_EXACT_LSBS = 1 << 24


@dataclass
class Const:
    value: np.ndarray  # float64, full shape (batch axis included when batched)


@dataclass
class Act:
    layer: str
    shape: tuple[int, ...]  # full shape, batch axis (size 1) first
    type: FixedType


@dataclass
class PendingTopk:
    """Attention weights of a fused FirmwareSoftmax(topk): never emitted N-wide; the chain's MatMul emits one
    L1TopkAttention layer from the logits, the key mask and the values."""

    node: object  # the FirmwareSoftmax node
    x: Act
    msk: Act
    mask_idx: np.ndarray
    spec: object  # SoftmaxSpec
    topk: int


@dataclass
class Frontend:
    """State of one conversion. ``layers`` is the hls4ml layer list; ``tensors`` maps ONNX tensor -> Const/Act."""

    model: object  # qonnx ModelWrapper, batch size 1
    layers: list[dict] = field(default_factory=list)
    tensors: dict = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    input_types: dict = field(default_factory=dict)
    layer_of_tensor: dict = field(default_factory=dict)
    softmax_layers: list[dict] = field(default_factory=list)
    feature_layers: list[dict] = field(default_factory=list)  # on-chip features of L1 words (spec, table digest)
    #: FirmwareSoftmax(topk) -> Quant -> MatMul chains emitted as one L1TopkAttention layer (contract
    #: ``topk_attention_fusions``), and one {layer, node, matmul, topk, spec, shape, table_digest} per fused layer
    topk_fusions: dict = field(default_factory=dict)
    topk_attention_layers: list[dict] = field(default_factory=list)
    _const_layers: dict = field(default_factory=dict)

    # -------------------------------------------------------------------------------------------- helpers
    def get(self, name: str, node) -> Const | Act:
        if name not in self.tensors:
            raise ConversionError(f"node {node.name!r} ({node.op_type}): input tensor {name!r} is not produced")
        return self.tensors[name]

    def const(self, name: str, node) -> np.ndarray:
        t = self.get(name, node)
        if not isinstance(t, Const):
            raise ConversionError(f"node {node.name!r} ({node.op_type}): input {name!r} must be a constant")
        return t.value

    def as_act(self, name: str, node, typ: FixedType | None = None) -> Act:
        """The tensor as an activation; a constant becomes an L1Const layer (once per tensor and type) of its own
        narrowest type, or of ``typ`` where the consumer needs one grid (ConversionError when a value is not exactly
        on it)."""
        t = self.get(name, node)
        if isinstance(t, Act):
            return t
        key = name if typ is None else f"{name}@{typ.describe()}"
        if key in self._const_layers:
            return self._const_layers[key]
        own, ints = fx.const_type(t.value, name)
        if typ is None:
            typ, lname = own, _sanitize(f"const_{name}")
        else:
            lo, hi = own.bounds_at(typ.frac) if own.frac <= typ.frac else (None, None)
            if lo is None or lo < typ.int_min or hi > typ.int_max:
                raise ConversionError(f"node {node.name!r} ({node.op_type}): constant input {name!r} is not on the "
                                      f"grid {typ.describe()} it needs")
            ints, lname = ints << (typ.frac - own.frac), _sanitize(f"const_{name}_{typ.describe()}")
        values = ints.ravel().astype(np.float64) * 2.0 ** -typ.frac  # exact dyadic values -> exact literals
        self.layers.append(_layer("L1Const", lname, [], t.value.shape, typ, batched=False,
                                  tables={"value": (fx.plain(typ).cpp(), values)}))
        act = Act(lname, tuple(t.value.shape), typ)
        self._const_layers[key] = act
        return act

    def emit(self, cls: str, node, inputs: list[Act], shape, typ: FixedType, **kw) -> None:
        name = _sanitize(node.name or node.output[0])
        if any(layer["name"] == name for layer in self.layers):
            name = _sanitize(f"{name}_{node.output[0]}")
        self.layers.append(_layer(cls, name, [a.layer for a in inputs], shape, typ, **kw))
        self.tensors[node.output[0]] = Act(name, tuple(int(s) for s in shape), typ)
        self.layer_of_tensor[node.output[0]] = name


def _sanitize(name: str) -> str:
    s = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return s if s and not s[0].isdigit() and s != "input" else f"n_{s}"


def _layer(cls, name, inputs, shape, typ: FixedType, round="TRN", sat="WRAP", consts=None, types=None,
           tables=None, batched=True, comment=None, code="") -> dict:
    shape = tuple(int(s) for s in shape)
    n_out = int(np.prod(shape)) if shape else 1
    c = {"n_out": n_out}
    c.update(consts or {})
    return {
        "class_name": cls,
        "name": name,
        "inputs": list(inputs),
        "outputs": [name],
        "l1": {"shape": shape[1:] if batched else shape, "full_shape": shape, "type": typ, "round": round,
               "sat": sat, "consts": c, "types": dict(types or {}), "tables": dict(tables or {}),
               "comment": list(comment or []), "code": code},
    }


def _check_lsbs(fe_node, typ: FixedType) -> None:
    if max(abs(typ.int_min), abs(typ.int_max)) > FLOAT32_EXACT_LSBS:
        raise ConversionError(
            f"node {fe_node.name!r} ({fe_node.op_type}): exact result needs {typ.width} bits; the float32 QONNX "
            f"reference is only exact below 2^24 LSBs - reduce the quantization widths"
        )


# ------------------------------------------------------------------------------------- layout semantics
def _layout_consts(fe: Frontend, node) -> list:
    """Values of a layout node's inputs after the data input (None when absent or not constant)."""
    out = []
    for name in node.input[1:]:
        t = fe.tensors.get(name) if name else None
        out.append(t.value if isinstance(t, Const) else None)
    return out


# ----------------------------------------------------------------------------------------------- handlers
Handler = Callable[[Frontend, object], None]
HANDLERS: dict[str, Handler] = {}


def handler(*ops: str):
    def deco(fn):
        for op in ops:
            HANDLERS[op] = fn
        return fn

    return deco


def quant_spec(fe: Frontend, node) -> QuantSpec:
    """The contract's decoding of a Quant node whose scale, zero point and bit width are constants."""
    return decode_quant(node, *(fe.const(name, node) for name in node.input[1:4]))


def ap_rounding(spec: QuantSpec, node, rounds: bool = True) -> str:
    """ap_fixed quantisation mode reproducing the node's qonnx rounding for either sign (contract ROUNDING).

    rounds=False: the input drops no fraction bit, so any mode is exact (AP_TRN stands in for one ap_fixed lacks).
    """
    ap = spec.mode.ap_fixed
    if ap is None and not rounds:
        return "AP_TRN"
    if ap is None:
        raise ConversionError(
            f"Quant node {node.name!r}: rounding_mode {spec.rounding!r} cannot be reproduced by ap_fixed "
            f"({spec.mode.note}); the converted firmware would not be bit-exact")
    return ap


@handler("Quant")
def _quant(fe: Frontend, node) -> None:
    spec = quant_spec(fe, node)
    src = fe.get(node.input[0], node)
    if isinstance(src, PendingTopk):  # the idempotent Quant of a fused top-k chain (checked by the fusion pass)
        fe.tensors[node.output[0]] = src
        return
    if isinstance(src, Const):  # folded with qonnx's own rounding function (contract ROUNDING)
        fe.tensors[node.output[0]] = Const(spec.apply(src.value))
        return
    out = fx.quant_type(spec.bits, spec.frac, spec.signed, spec.narrow)
    ap_round = ap_rounding(spec, node, rounds=src.type.frac > spec.frac)
    mid = fx.rounding_mid_type(src.type, spec.frac)
    sat = "SAT_SYM" if (spec.signed and spec.narrow) else "SAT"
    fe.emit("L1Quant", node, [src], src.shape, out, sat=sat,
            types={"mid_t": mid.cpp(ap_round, "AP_WRAP")},
            consts={})


@handler("Relu")
def _relu(fe: Frontend, node) -> None:
    a = fe.as_act(node.input[0], node)
    t = FixedType(a.type.signed, a.type.width, a.type.frac, 0, max(0, a.type.int_max))
    fe.emit("L1Relu", node, [a], a.shape, t)


def _bcast_tables(a_shape, b_shape, node):
    try:
        out_shape = np.broadcast_shapes(a_shape, b_shape)
    except ValueError as exc:
        raise ConversionError(f"node {node.name!r} ({node.op_type}): shapes {a_shape} and {b_shape} "
                              f"do not broadcast") from exc
    a_idx = np.broadcast_to(np.arange(int(np.prod(a_shape))).reshape(a_shape), out_shape).ravel()
    b_idx = np.broadcast_to(np.arange(int(np.prod(b_shape))).reshape(b_shape), out_shape).ravel()
    return out_shape, a_idx, b_idx


def _elementwise(fe: Frontend, node, cls: str, typefn, npfn) -> None:
    ta, tb = fe.get(node.input[0], node), fe.get(node.input[1], node)
    if isinstance(ta, Const) and isinstance(tb, Const):
        fe.tensors[node.output[0]] = Const(npfn(ta.value, tb.value))
        return
    a, b = fe.as_act(node.input[0], node), fe.as_act(node.input[1], node)
    out_shape, a_idx, b_idx = _bcast_tables(a.shape, b.shape, node)
    t = typefn(a.type, b.type)
    _check_lsbs(node, t)
    fe.emit(cls, node, [a, b], out_shape, t,
            consts={"n_a": int(np.prod(a.shape)), "n_b": int(np.prod(b.shape))},
            tables={"a_idx": ("int", a_idx), "b_idx": ("int", b_idx)})


@handler("Add")
def _add(fe: Frontend, node) -> None:
    _elementwise(fe, node, "L1Add", fx.add_type, np.add)


@handler("Mul")
def _mul(fe: Frontend, node) -> None:
    _elementwise(fe, node, "L1Mul", fx.mul_type, np.multiply)


def _const_matrix(t) -> np.ndarray | None:
    """A constant operand as a 2-D matrix (leading size-1 axes dropped), or None (an activation, or a constant with
    real batch axes: those stay generic products)."""
    if not isinstance(t, Const) or t.value.ndim < 2 or any(d != 1 for d in t.value.shape[:-2]):
        return None
    return t.value.reshape(t.value.shape[-2:])


def cmvm_code(w: np.ndarray, x_type: FixedType, name: str) -> tuple[str, int]:
    """(C++ of ``y = x @ w`` as shift-and-add, da4ml cost) for one input vector of ``x_type``: da4ml's constant
    matrix-vector solution (distributed arithmetic: each output a sum of shifted inputs, shared partial sums; a zero
    weight reads nothing), written by da4ml's HLS code generation as ``static void cmvm<inp_t, out_t>(...)`` for
    the layer's config struct. Every intermediate is exact; the caller's out_t holds every result."""
    from da4ml.codegen.hls import hls_logic_and_bridge_gen
    from da4ml.trace import FixedVariableArray, comb_trace

    from l1tagger.rtl.traced import HWCONF, exact_decimal

    n_in = w.shape[0]
    k = np.full(n_in, int(x_type.signed), np.int8)
    i = np.full(n_in, x_type.width - x_type.frac - int(x_type.signed), np.int16)
    f = np.full(n_in, x_type.frac, np.int16)
    with exact_decimal():
        x = FixedVariableArray.from_kif(k, i, f, HWCONF)
        sol = comb_trace(x, x @ w)
        code, _ = hls_logic_and_bridge_gen(sol, "cmvm", "vitis", pragmas=["#pragma HLS INLINE",
                                                                        "using l1t::bit_shift;"])
    head = "template <typename inp_t, typename out_t>\nvoid cmvm("
    if not code.startswith(head):
        raise ConversionError(f"MatMul node {name!r}: unexpected da4ml HLS code layout (da4ml version?)")
    body = "\n".join("    " + line if line else line for line in code[len(head):].splitlines()).lstrip()
    return f"    template <typename inp_t, typename out_t>\n    static void cmvm({body}\n", int(round(sol.cost))


def _const_matmul(fe: Frontend, node, x: Act, w: np.ndarray, left: bool) -> None:
    """``x @ W`` (``left``: ``W @ x``, a Linformer projection) with a constant 2-D ``W``: kernel ``cmatmul``, one
    shift-and-add solution (:func:`cmvm_code`) applied to every row (every column of x for ``W @ x``); a product by
    an all-zero (pruned) matrix folds to a constant zero."""
    if left:  # y[..., m, p] = sum_k W[m, k] x[..., k, p]: per column p the CMVM with W^T
        w = w.T
    n_k, n_p = w.shape
    shape = x.shape
    if (shape[-2] if left else shape[-1]) != n_k:
        raise ConversionError(f"MatMul node {node.name!r}: contraction {shape} with a {w.shape} constant does not "
                              f"match")
    out_shape = shape[:-2] + ((n_p, shape[-1]) if left else (shape[-2], n_p))
    if w.size and not np.any(w):
        fe.tensors[node.output[0]] = Const(np.zeros(out_shape))  # a pruned layer holds no logic
        return
    w_type, _ = fx.const_type(w, f"{node.name}.weights")
    t = fx.mul_type(x.type, w_type, n_terms=n_k)
    _check_lsbs(node, t)
    xi = np.arange(int(np.prod(shape))).reshape(shape)
    yi = np.arange(int(np.prod(out_shape))).reshape(out_shape)
    if left:  # rows = (batch, column p): the contraction / output axis is -2
        xi, yi = np.swapaxes(xi, -1, -2), np.swapaxes(yi, -1, -2)
    in_idx, out_idx = xi.reshape(-1, n_k), yi.reshape(-1, n_p)
    code, cost = cmvm_code(w, x.type, node.name)
    fe.emit("L1ConstMatMul", node, [x], out_shape, t,
            consts={"n_a": int(np.prod(shape)), "n_rows": len(in_idx), "n_k": n_k, "n_p": n_p},
            types={"accum_t": fx.plain(t).cpp()},
            tables={"in_idx": ("int", in_idx.ravel()), "out_idx": ("int", out_idx.ravel())},
            code=code, comment=[f"{node.name}: constant {n_k}x{n_p} matrix ({int(np.count_nonzero(w))} nonzero) as "
                                f"shift-and-add: da4ml CMVM, cost {cost} per row, {len(in_idx)} rows"])


@handler("MatMul")
def _matmul(fe: Frontend, node) -> None:
    ta, tb = fe.get(node.input[0], node), fe.get(node.input[1], node)
    if isinstance(ta, PendingTopk):  # attention weights of a fused top-k softmax times the values
        return _topk_attention(fe, node, ta, fe.as_act(node.input[1], node))
    if isinstance(ta, Const) and isinstance(tb, Const):
        fe.tensors[node.output[0]] = Const(np.matmul(ta.value, tb.value))
        return
    wb, wa = _const_matrix(tb), _const_matrix(ta)
    if wb is not None and len(ta.shape) >= 2:
        return _const_matmul(fe, node, ta, wb, left=False)
    if wa is not None and len(tb.shape) >= 2:
        return _const_matmul(fe, node, tb, wa, left=True)
    a, b = fe.as_act(node.input[0], node), fe.as_act(node.input[1], node)
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise ConversionError(f"MatMul node {node.name!r}: 1-D operands {a.shape} @ {b.shape} are not supported")
    m, k = a.shape[-2:]
    k2, p = b.shape[-2:]
    if k != k2:
        raise ConversionError(f"MatMul node {node.name!r}: contraction {a.shape} @ {b.shape} does not match")
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError as exc:
        raise ConversionError(f"MatMul node {node.name!r}: batch dims {a.shape} @ {b.shape} do not broadcast") from exc
    a_off = np.broadcast_to(np.arange(int(np.prod(a.shape[:-2]))).reshape(a.shape[:-2]), batch).ravel() * (m * k)
    b_off = np.broadcast_to(np.arange(int(np.prod(b.shape[:-2]))).reshape(b.shape[:-2]), batch).ravel() * (k * p)
    t = fx.mul_type(a.type, b.type, n_terms=k)
    _check_lsbs(node, t)
    out_shape = tuple(batch) + (m, p)
    fe.emit("L1MatMul", node, [a, b], out_shape, t,
            consts={"n_a": int(np.prod(a.shape)), "n_b": int(np.prod(b.shape)), "n_batch": int(np.prod(batch)),
                    "n_m": int(m), "n_k": int(k), "n_p": int(p)},
            types={"accum_t": fx.plain(t).cpp()},
            tables={"a_off": ("int", a_off), "b_off": ("int", b_off)})


@handler(*sorted(SINGLE_INPUT_LAYOUT_OPS))
def _layout(fe: Frontend, node) -> None:
    src = fe.get(node.input[0], node)
    consts = _layout_consts(fe, node)
    if isinstance(src, Const):
        fe.tensors[node.output[0]] = Const(layout(node, src.value, consts))
        return
    idx = layout(node, np.arange(int(np.prod(src.shape))).reshape(src.shape), consts)
    fe.emit("L1Permute", node, [src], idx.shape, src.type, consts={"n_in": int(np.prod(src.shape))},
            tables={"idx": ("int", idx.ravel())})


@handler("Concat")
def _concat(fe: Frontend, node) -> None:
    parts = [fe.get(n, node) for n in node.input]
    if all(isinstance(p, Const) for p in parts):
        fe.tensors[node.output[0]] = Const(concat(node, [p.value for p in parts]))
        return
    acts = [fe.as_act(n, node) for n in node.input]
    cur = acts[0]
    for i, b in enumerate(acts[1:]):
        a = cur
        ia = np.arange(int(np.prod(a.shape))).reshape(a.shape)
        ib = np.arange(int(np.prod(b.shape))).reshape(b.shape)
        idx = concat(node, [ia, ib])
        src = concat(node, [np.zeros(a.shape, np.int64), np.ones(b.shape, np.int64)])
        t = fx.union_type(a.type, b.type)
        last = i == len(acts) - 2
        sub = node if last else onnx.helper.make_node("Concat", [], [f"{node.output[0]}__part{i}"],
                                                      name=f"{node.name}_part{i}")
        fe.emit("L1Concat", sub, [a, b], idx.shape, t,
                consts={"n_a": int(np.prod(a.shape)), "n_b": int(np.prod(b.shape))},
                tables={"idx": ("int", idx.ravel()), "src": ("int", src.ravel())})
        cur = fe.tensors[sub.output[0]]


def _softmax_config(spec, n: int, n_terms: int) -> tuple[dict, dict, dict]:
    """(consts, types, tables) of the softmax steps in a config struct: spec constants, the C++ types of the logit
    integer, exp entry, exact sum of ``n_terms`` entries, inverse entry and output, and the EXP / INV tables."""
    exp_t, inv_t = spec.exp_table(), spec.inv_table()
    rounding = {"floor": 0, "half_up": 1, "half_even": 2}[spec.rounding]
    consts = {"in_bits": spec.in_bits, "in_frac": spec.in_frac, "in_min": spec.in_min,
              "exp_shift": spec.exp_shift, "exp_n": len(exp_t), "inv_shift": spec.inv_shift,
              "inv_n": len(inv_t), "product_shift": spec.product_shift, "rounding": rounding,
              "out_max": spec.out_max, "out_frac": spec.out_frac}
    types = {"q_t": f"ap_int<{spec.in_bits + 1}>",
             "scaled_t": f"ap_fixed<{spec.in_bits + 1 + spec.in_frac},{spec.in_bits + 1}>",
             "exp_t": f"ap_uint<{int(exp_t.max()).bit_length() or 1}>",
             "sum_t": f"ap_uint<{spec.sum_bits(n_terms)}>",
             "inv_t": f"ap_uint<{max(1, int(inv_t.max()).bit_length())}>",
             "out_int_t": f"ap_uint<{spec.out_bits}>",
             "out_wide_t": f"ap_ufixed<{spec.out_bits + spec.out_frac},{spec.out_bits}>"}
    return consts, types, {"exp_table": ("long long", exp_t), "inv_table": ("long long", inv_t)}


def _topk_attention(fe: Frontend, node, a: PendingTopk, v: Act) -> None:
    """FirmwareSoftmax(topk) -> Quant -> MatMul(A, V) as one layer, kernel ``topk_attention``: per query row a
    selection network (k rounds of a balanced argmax, ties to the lower index) yields the kept keys in rank order,
    the softmax runs on those k slots (k exp reads, the same exact sum), and the output sums k products o_s V[idx_s]
    instead of N (docs/firmware_softmax.md, "Top-k in hardware"). Bit-exact: the dropped weights are exactly 0."""
    x, spec, k = a.x, a.spec, a.topk
    n, m = int(x.shape[-1]), int(x.shape[-2])
    if len(v.shape) < 2 or int(v.shape[-2]) != n:
        raise ConversionError(f"MatMul node {node.name!r}: values {v.shape} do not match the {n} keys of "
                              f"FirmwareSoftmax node {a.node.name!r}")
    p = int(v.shape[-1])
    try:
        batch = np.broadcast_shapes(x.shape[:-2], v.shape[:-2])
    except ValueError as exc:
        raise ConversionError(f"MatMul node {node.name!r}: batch dims {x.shape} @ {v.shape} do not broadcast") \
            from exc
    a_off = np.broadcast_to(np.arange(int(np.prod(x.shape[:-2]))).reshape(x.shape[:-2]), batch).ravel() * (m * n)
    b_off = np.broadcast_to(np.arange(int(np.prod(v.shape[:-2]))).reshape(v.shape[:-2]), batch).ravel() * (n * p)
    w_type = FixedType(False, spec.out_bits, spec.out_frac)
    t = fx.mul_type(w_type, v.type, n_terms=k)
    _check_lsbs(node, t)
    consts, types, tables = _softmax_config(spec, n, k)
    fe.emit("L1TopkAttention", node, [x, a.msk, v], tuple(batch) + (m, p), t,
            consts={"n_x": int(np.prod(x.shape)), "n_mask": int(np.prod(a.msk.shape)), "n_v": int(np.prod(v.shape)),
                    "n_batch": int(np.prod(batch)), "n_m": m, "n_cols": n, "n_p": p, "topk": k,
                    "idx_bits": max(1, (n - 1).bit_length()), **consts},
            types={"key_t": f"ap_uint<{spec.in_bits + 1}>", "w_t": w_type.cpp(), "accum_t": fx.plain(t).cpp(),
                   **types},
            tables={"a_off": ("int", a_off), "b_off": ("int", b_off), "mask_idx": ("int", a.mask_idx), **tables},
            comment=[f"{a.node.name} (top-{k} of {n}) fused with {node.name}: {k}-slot selection, {k}-wide softmax, "
                     f"{k} x {p} products per row"])
    fe.topk_attention_layers.append({"layer": fe.layer_of_tensor[node.output[0]], "node": a.node.name,
                                     "matmul": node.name, "topk": k, "spec": spec.to_dict(),
                                     "shape": list(x.shape[1:]), "table_digest": spec.table_digest()})


@handler("FirmwareSoftmax")
def _softmax(fe: Frontend, node) -> None:
    spec, topk = spec_of_node(node)
    # constant logits (a pruned query or key projection) are laid out on the spec's logit grid
    x = fe.as_act(node.input[0], node, FixedType(True, spec.in_bits, spec.in_frac))
    msk = fe.as_act(node.input[1], node) if len(node.input) > 1 and node.input[1] else None
    if not x.type.signed or x.type.frac != spec.in_frac or x.type.width > spec.in_bits:
        raise ConversionError(
            f"FirmwareSoftmax node {node.name!r}: input type {x.type.describe()} is not the spec's logit grid "
            f"s{spec.in_bits}.{spec.in_frac} (a Quant node with scale 2^-in_frac must precede the softmax)")
    if spec.in_frac < 0 or spec.out_frac < 0:
        raise ConversionError(f"FirmwareSoftmax node {node.name!r}: negative in_frac/out_frac is not supported")
    n = int(x.shape[-1])
    rows = int(np.prod(x.shape[:-1]))
    if msk is None:  # no key mask (e.g. Linformer-projected keys): every key is real
        ones = f"{node.name}__all_keys"
        fe.tensors[ones] = Const(np.ones((1,), np.float64))
        msk = fe.as_act(ones, node)
    _, _, mask_idx = _bcast_tables(x.shape, msk.shape, node)
    if len(mask_idx) != rows * n:
        raise ConversionError(f"FirmwareSoftmax node {node.name!r}: mask {msk.shape} does not broadcast to "
                              f"the logits {x.shape}")
    if node.name in fe.topk_fusions and 0 < topk < n:  # emitted fused by the chain's MatMul (_topk_attention)
        fe.tensors[node.output[0]] = PendingTopk(node, x, msk, mask_idx, spec, topk)
        return
    consts, types, tables = _softmax_config(spec, n, n)
    fe.emit("L1Softmax", node, [x, msk], x.shape, FixedType(False, spec.out_bits, spec.out_frac),
            consts={"n_rows": rows, "n_cols": n, "n_mask": int(np.prod(msk.shape)), "topk": topk, **consts},
            types=types, tables={"mask_idx": ("int", mask_idx), **tables})
    fe.softmax_layers.append({"layer": fe.layer_of_tensor[node.output[0]], "node": node.name, "topk": topk,
                              "spec": spec.to_dict(), "shape": list(x.shape[1:]),
                              "table_digest": spec.table_digest()})


#: kind of an l1 feature op -> extension layer class (kernels l1w_* in nnet_l1tagger.h)
L1_FEATURE_LAYERS = {"particle": "L1WordParticles", "pair": "L1WordPairs", "mask": "L1WordMask"}


@handler(*l1features.OP_TYPES)
def _l1features(fe: Frontend, node) -> None:
    spec = l1features.spec_of_node(node)
    kind = l1features.kind_of(node.op_type)
    fmt = spec.format
    w = fe.as_act(node.input[0], node)
    if len(w.shape) != 3 or w.shape[-1] != fmt.n_fields:
        raise ConversionError(f"{node.op_type} node {node.name!r}: words of shape {w.shape}, expected (1, N, "
                              f"{fmt.n_fields}) for word format {fmt.name!r}")
    if w.type.frac != 0:
        raise ConversionError(f"{node.op_type} node {node.name!r}: words type {w.type.describe()} is not on the unit "
                              f"grid (a Quant node with scale 1 must precede the feature ops)")
    n = int(w.shape[1])
    if n > spec.max_particles:
        raise ConversionError(f"{node.op_type} node {node.name!r}: {n} particles exceed max_particles = "
                              f"{spec.max_particles}")
    signed, bits, frac = l1features.output_grid(spec, kind)
    out = FixedType(signed, bits, frac)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    tables = spec.tables()
    consts = {"n_part": n, "n_fields": fmt.n_fields, **{f"i_{f.name}": fmt.index(f.name) for f in fmt.fields},
              **{f"{f.name}_bits": f.bits for f in fmt.fields if f.name in ("pt", "eta", "phi")},
              "phi_pi": fmt.intphi_pi, "log_m": spec.log_mantissa_bits, "w_sum": spec.sum_code_bits,
              "w_d2": spec.d2_bits, "frac": frac, "out_lo": lo, "out_hi": hi, "one": 1 << spec.frac,
              "n_feat": spec.n_features, "n_softplus": len(tables["softplus"]) if "softplus" in tables else 0,
              "delta_lse": int(spec.delta == "lse"), "w_dabs": spec.dabs_bits,
              "n_halfsp": len(tables["halfsp"]) if "halfsp" in tables else 0,
              "pair_set": tuple(l1features.PAIR_SETS).index(spec.pair_set), "code_m": spec.code_mantissa_bits,
              "w_dist": spec.dist_bits, "code_step": spec.code_step}
    tab = {"particle": {"logpt": ("long long", tables["logpt"]),
                        "feat": ("int", [l1features.PARTICLE_FEATURES.index(f) for f in spec.particle_features])},
           "pair": {name: ("long long", table) for name, table in tables.items()},
           "mask": {}}[kind]
    wide = f"ap_fixed<{bits + frac},{bits}>" if signed else f"ap_ufixed<{bits + frac},{bits}>"
    fe.emit(L1_FEATURE_LAYERS[kind], node, [w], l1features.output_shape(node.op_type, w.shape, spec), out,
            consts=consts, types={"out_wide_t": wide}, tables=tab,
            comment=[f"{node.op_type} {node.name}: tables from L1FeatureSpec, sha256 {spec.table_digest()}"])
    fe.feature_layers.append({"layer": fe.layer_of_tensor[node.output[0]], "node": node.name, "op": node.op_type,
                              "spec": spec.to_dict(), "table_digest": spec.table_digest()})


@handler(l1features.PAIR_OP)
def _l1pairs(fe: Frontend, node) -> None:
    """L1PairFeatures: the ``l1w_pairs`` kernel over all N x N pairs (``_l1features``); with the spec's ``pairs:
    upper`` (the symmetric interaction designs, docs/interaction.md) the unique pairs i <= j are then picked by an
    ``L1Permute`` (wiring: the kernel computes each unordered pair once either way)."""
    spec = l1features.spec_of_node(node)
    if spec.pairs == "full":
        _l1features(fe, node)
        return
    import dataclasses

    full = onnx.helper.make_node(node.op_type, list(node.input), [f"{node.output[0]}__all_pairs"],
                                 name=f"{node.name}_all_pairs", domain=node.domain,
                                 spec=dataclasses.replace(spec, pairs="full").to_json())
    _l1features(fe, full)
    src = fe.tensors[full.output[0]]
    n = int(src.shape[1])
    idx = np.arange(int(np.prod(src.shape))).reshape(1, n * n, src.shape[-1])[:, l1features.upper_pair_index(n)]
    fe.emit("L1Permute", node, [src], idx.shape, src.type, consts={"n_in": int(np.prod(src.shape))},
            tables={"idx": ("int", idx.ravel())})


@handler(pairtable.PAIR_TABLE_OP)
def _pairtable(fe: Frontend, node) -> None:
    """L1PairTable (docs/interaction.md): kernel ``pairtable``, per row and feature an index from the input's raw
    integer (subtract the edge, shift, clip), per head the exact integer sum of the table entries (ROM reads)."""
    spec = pairtable.spec_of_node(node)
    where = f"L1PairTable node {node.name!r}"
    x = fe.as_act(node.input[0], node)
    table = fe.const(node.input[1], node)
    pairtable.check_shapes(x.shape, table.shape, spec, where)
    if x.type.frac < 0:
        raise ConversionError(f"{where}: pair input type {x.type.describe()} has negative fraction bits")
    typ, ints = fx.const_type(table, node.input[1])
    frac = typ.frac
    if frac < 0:
        ints, frac = ints << -frac, 0
    lo_int = [lo * 2.0**x.type.frac for lo in spec.lo]
    if any(v != round(v) for v in lo_int):
        raise ConversionError(f"{where}: lower edges {list(spec.lo)} are not on the pair input grid 2^-{x.type.frac}")
    lo_sum = min(int(sum(ints[f, h].min() for f in range(spec.n_features))) for h in range(spec.n_heads))
    hi_sum = max(int(sum(ints[f, h].max() for f in range(spec.n_features))) for h in range(spec.n_heads))
    out = fx.from_bounds(min(lo_sum, 0), max(hi_sum, 0), frac)
    _check_lsbs(node, out)
    rows = int(np.prod(x.shape[:-1]))
    w = x.type.width + 1
    wide = f"ap_fixed<{out.width + 1 + frac},{out.width + 1}>"
    fe.emit("L1PairTableLayer", node, [x], pairtable.output_shape(x.shape, spec), out,
            consts={"n_rows": rows, "n_feat": spec.n_features, "n_heads": spec.n_heads, "n_entries": spec.n_entries,
                    "in_frac": x.type.frac, "out_frac": frac},
            types={"scaled_t": f"ap_fixed<{w + x.type.frac},{w}>", "out_wide_t": wide},
            tables={"lo": ("long long", [int(round(v)) for v in lo_int]),
                    "sh": ("int", [x.type.frac + e for e in spec.exp]),
                    "table": ("long long", ints.ravel())},
            comment=[f"L1PairTable {node.name}: spec {spec.to_json()}"])


# ----------------------------------------------------------------------------------------------- driver
def input_type(model, name: str) -> tuple[FixedType, str, str, str]:
    """(type, rounding, saturation, role) of a graph input: the grid of the Quant node(s) that read it, or a
    1-bit unsigned 0/1 mask when no Quant node reads it."""
    consumers = model.find_consumers(name) or []
    quants = [c for c in consumers if c.op_type == "Quant"]
    if not quants:
        return FixedType(False, 1, 0), "TRN", "SAT", "mask"
    fe = Frontend(model)
    for init in model.graph.initializer:
        fe.tensors[init.name] = Const(np.asarray(onnx.numpy_helper.to_array(init), np.float64))
    specs = {quant_spec(fe, q) for q in quants}
    if len(specs) != 1:
        raise ConversionError(f"graph input {name!r} is read by Quant nodes with different grids "
                              f"{sorted(map(str, specs))}")
    spec = specs.pop()
    t = fx.quant_type(spec.bits, spec.frac, spec.signed, spec.narrow)
    ap_rounding(spec, quants[0])  # float inputs generally round: refuse a mode ap_fixed cannot reproduce
    return t, spec.mode.hls4ml, "SAT_SYM" if (spec.signed and spec.narrow) else "SAT", "features"


def build_layer_list(model, fuse_topk: bool = True) -> Frontend:
    """Walk the (batch-1) cleaned QONNX graph and return the filled :class:`Frontend`.

    fuse_topk: emit FirmwareSoftmax(topk) -> Quant -> MatMul(A, V) chains as one L1TopkAttention layer (k-slot
    selection, k-wide softmax and product); False keeps the N-wide softmax and product (the attention weights are
    then traced layer outputs, e.g. for reading the firmware's attention maps).
    """
    fe = Frontend(model)
    for init in model.graph.initializer:
        fe.tensors[init.name] = Const(np.asarray(onnx.numpy_helper.to_array(init), np.float64))
    if fuse_topk:
        fe.topk_fusions = topk_attention_fusions(model.graph, {k: t.value for k, t in fe.tensors.items()})
    for vi in model.graph.input:
        if vi.name in fe.tensors:
            continue
        shape = tuple(int(d) for d in model.get_tensor_shape(vi.name))
        if not shape or shape[0] != 1:
            raise ConversionError(f"graph input {vi.name!r} must have batch size 1, has shape {shape}")
        t, rnd, sat, role = input_type(model, vi.name)
        lname = _sanitize(vi.name)
        fe.layers.append({"class_name": "InputLayer", "name": lname, "input_shape": list(shape[1:]),
                          "outputs": [lname]})
        fe.inputs.append(lname)
        fe.input_types[lname] = {"type": t, "round": rnd, "sat": sat, "role": role, "onnx": vi.name}
        fe.tensors[vi.name] = Act(lname, shape, t)
        fe.layer_of_tensor[vi.name] = lname
    for node in model.graph.node:
        fn = HANDLERS.get(node.op_type)
        if fn is None:
            raise ConversionError(f"unsupported op {node.op_type!r} in node {node.name!r}: the l1tagger hls4ml "
                                  f"converter implements only {sorted(HANDLERS)}")
        try:
            fn(fe, node)
        except ConversionError:
            raise
        except (ValueError, IndexError, KeyError, TypeError) as exc:  # malformed attributes / shapes
            raise ConversionError(f"node {node.name!r} ({node.op_type}) cannot be converted: {exc}") from exc
    for out in model.graph.output:
        t = fe.tensors.get(out.name)
        if not isinstance(t, Act):
            raise ConversionError(f"graph output {out.name!r} is not computed from the inputs")
    return fe


