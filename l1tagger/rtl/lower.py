"""Lower a cleaned l1tagger QONNX graph to da4ml logic by interpreting it node by node on traced arrays.

    lowered = lower_model("model.onnx")          # or a qonnx ModelWrapper / onnx ModelProto
    lowered.comb                                 # da4ml CombLogic (one jet per evaluation, batch axis 1)
    lowered.encode_inputs({"x": x, "mask": m, "pair": p})   # (n_jets, n_inputs) values on the input grids
    lowered.decode_outputs(y)                    # {"logits": (n_jets, n_classes)}

Each op type has one handler in :data:`OP_HANDLERS` (a registry: add an op by adding a function). Handlers take
the node, its input values (numpy constants or da4ml ``FixedVariableArray``) and the :class:`LowerContext`, and
return the output values; nodes whose inputs are all constant are folded by the same handlers.

Semantics that matter for bit exactness:

* ``Quant`` on a traced tensor: floor -> da4ml truncation; ``HALF_UP`` -> da4ml half-up (only for non-negative
  inputs: qonnx's HALF_UP rounds ties away from zero); ``ROUND``/half-even only where no rounding happens (the input
  already lies on the output grid, e.g. the idempotent Quant after a softmax). Otherwise ConfigError: da4ml rounds
  only by truncation or half-up. Saturation to the integer range (narrow range included) is exact.
* Graph inputs are the RTL input ports, carrying values already on the grid of their ``Quant`` node (the
  preprocessing grid); a graph input without a ``Quant`` consumer (the key mask) is a 1-bit unsigned 0/1 port.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from da4ml.trace import FixedVariable, FixedVariableArray, FixedVariableArrayInput, comb_trace
from onnx import helper, numpy_helper

from l1tagger.errors import ConfigError, ConversionError
from l1tagger.rtl.traced import HWCONF, elementwise, exact_decimal, is_bit, is_traced, matmul, raw, select, wrap

QONNX_DOMAIN = "qonnx.custom_op.general"


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
        from qonnx.custom_op.general.quant import quant

        return quant(v, np.float64(2.0**-self.frac), np.float64(0), np.float64(self.bits), int(self.signed),
                     int(self.narrow), "FLOOR")


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


# ------------------------------------------------------------------------------------------------ helpers
def attrs_of(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _const(x, node, what: str) -> np.ndarray:
    if is_traced(x):
        raise ConversionError(f"node {node.name!r} ({node.op_type}): {what} must be a constant, got a traced tensor")
    return np.asarray(x)


def _pow2_frac(scale: np.ndarray, node) -> np.ndarray:
    s = np.asarray(scale, dtype=np.float64)
    if np.any(s <= 0):
        raise ConversionError(f"Quant node {node.name!r}: scale must be positive")
    f = -np.log2(s)
    if not np.all(f == np.round(f)):
        raise ConversionError(f"Quant node {node.name!r}: scale {s.ravel()[:4]} is not a power of two")
    return np.round(f).astype(int)


def _rounding_mode(name: str, x: FixedVariableArray, f: np.ndarray, node) -> str:
    """da4ml round mode for a qonnx Quant on a traced tensor (ConfigError when da4ml cannot express it)."""
    name = name.upper()
    if name == "FLOOR":
        return "TRN"
    needs_rounding = any(float(v.step) < 2.0 ** -int(ff) for v, ff in
                         zip(x._vars.ravel(), np.broadcast_to(f, x.shape).ravel()) if v.low != v.high)
    if not needs_rounding:
        return "TRN"
    if name == "HALF_UP" and all(v.low >= 0 for v in x._vars.ravel()):
        return "RND"
    raise ConfigError(
        f"Quant node {node.name!r} rounds with rounding_mode={name!r}: da4ml rounds only by truncation (FLOOR) or "
        f"half-up (HALF_UP on non-negative values); export the model with a floor or half-up recipe "
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
    x, scale, zeropt, bits = ins
    a = attrs_of(node)
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    rounding = a.get("rounding_mode", b"ROUND")
    rounding = rounding.decode() if isinstance(rounding, bytes) else str(rounding)
    scale = _const(scale, node, "scale")
    zeropt = _const(zeropt, node, "zero point")
    bits = int(np.asarray(_const(bits, node, "bit width")).ravel()[0])
    if not is_traced(x):
        from qonnx.custom_op.general.quant import quant

        return [quant(np.asarray(x, np.float64), scale, zeropt, np.float64(bits), int(signed), int(narrow), rounding)]
    if np.any(np.asarray(zeropt) != 0):
        raise ConversionError(f"Quant node {node.name!r}: zero point must be 0")
    if bits == 1 and signed:
        raise ConversionError(f"Quant node {node.name!r}: 1-bit signed (bipolar) quantizers are not supported")
    f = _pow2_frac(scale, node)
    from qonnx.custom_op.general.quant import max_int, min_int

    lo, hi = min_int(signed, narrow, bits), max_int(signed, narrow, bits)
    k, i = int(signed), bits - int(signed)
    if isinstance(x, FixedVariableArrayInput) or any(type(v).__name__ == "FixedVariableInput" for v in x._vars.ravel()):
        # a graph input port: its values are already on this grid (InputPort.encode applies the Quant)
        return [x.quantize(k, np.broadcast_to(i - f, x.shape), np.broadcast_to(f, x.shape), "WRAP", "TRN")]
    mode = _rounding_mode(rounding, x, f, node)
    fb = np.broadcast_to(f, x.shape).ravel()
    out = []
    for v, ff in zip(x._vars.ravel(), fb):
        ff = int(ff)
        step = 2.0**-ff
        if v.low == v.high:
            q = math.floor(float(v.low) / step + (0.5 if mode == "RND" else 0.0))
            out.append(FixedVariable.from_const(min(max(q, lo), hi) * step, hwconf=HWCONF))
            continue
        vk, vi, _ = v.kif
        r = v.quantize(vk, vi + 1, ff, "WRAP", mode)  # round only (wide enough not to wrap)
        if isinstance(r, FixedVariable):
            r = _clamp(r, lo * step, hi * step)
        else:
            r = min(max(r, lo * step), hi * step)
        out.append(r.quantize(k, i - ff, ff, "WRAP", "TRN") if isinstance(r, FixedVariable) else r)
    return [wrap(np.array(out, dtype=object).reshape(x.shape), True)]


def op_matmul(node, ins, ctx):
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


def _layout(fn):
    """Handler for a pure layout op: ``fn(raw_array, node, const_inputs) -> raw_array``."""

    def handler(node, ins, ctx):
        x = ins[0]
        return [wrap(fn(raw(x), node, [None if i is None or is_traced(i) else np.asarray(i) for i in ins[1:]]),
                     is_traced(x))]

    return handler


def _axes(node, extra, ndim):
    a = attrs_of(node)
    axes = a.get("axes")
    if axes is None and extra and extra[0] is not None:
        axes = extra[0].astype(int).tolist()
    return None if axes is None else [int(ax) % ndim for ax in axes]


def _reshape(x, node, extra):
    shape = [int(s) for s in extra[0]]
    allowzero = attrs_of(node).get("allowzero", 0)
    shape = [x.shape[i] if (s == 0 and not allowzero) else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _flatten(x, node, extra):
    ax = attrs_of(node).get("axis", 1) % max(x.ndim, 1)
    return x.reshape((int(np.prod(x.shape[:ax])), -1))


def _squeeze(x, node, extra):
    axes = _axes(node, extra, x.ndim)
    return np.squeeze(x, axis=tuple(axes) if axes is not None else None)


def _unsqueeze(x, node, extra):
    a = attrs_of(node).get("axes")
    axes = [int(v) for v in (a if a is not None else extra[0].astype(int).tolist())]
    out_ndim = x.ndim + len(axes)
    for ax in sorted(ax % out_ndim for ax in axes):
        x = np.expand_dims(x, ax)
    return x


def _slice(x, node, extra):
    starts, ends = extra[0].astype(int), extra[1].astype(int)
    axes = extra[2].astype(int) if len(extra) > 2 and extra[2] is not None else np.arange(len(starts))
    steps = extra[3].astype(int) if len(extra) > 3 and extra[3] is not None else np.ones(len(starts), int)
    sl = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        sl[int(ax) % x.ndim] = slice(int(s), int(min(e, 2**62)) if e > 0 else int(e), int(st))
    return x[tuple(sl)]


def _gather(x, node, extra):
    ax = attrs_of(node).get("axis", 0)
    return np.take(x, extra[0].astype(int), axis=ax)


def op_concat(node, ins, ctx):
    ax = attrs_of(node)["axis"]
    traced = any(is_traced(i) for i in ins)
    arrs = [raw(i).astype(object) if traced else raw(i) for i in ins]
    return [wrap(np.concatenate(arrs, axis=ax), traced)]


def op_identity(node, ins, ctx):
    return [ins[0]]


def op_firmware_softmax(node, ins, ctx):
    from l1tagger.export.custom_ops import spec_of_node
    from l1tagger.rtl.softmax import firmware_softmax

    spec, topk = spec_of_node(node)
    logits = ins[0]
    mask = ins[1] if len(ins) > 1 else None
    if not is_traced(logits):
        from l1tagger.qat.softmax import softmax_int

        q = np.round(np.asarray(logits) * 2.0**spec.in_frac).astype(np.int64)
        return [softmax_int(q, None if mask is None else np.asarray(mask), topk, spec) * 2.0**-spec.out_frac]
    return [firmware_softmax(logits, mask, spec, topk, node.name)]


#: op_type -> handler(node, inputs, ctx) -> outputs.  The same set as l1tagger.export.opset.SUPPORTED_OPS.
OP_HANDLERS: dict[str, Callable] = {
    "Quant": op_quant,
    "MatMul": op_matmul,
    "Add": op_add,
    "Mul": op_mul,
    "Relu": op_relu,
    "FirmwareSoftmax": op_firmware_softmax,
    "Transpose": _layout(lambda x, node, extra: x.transpose(attrs_of(node).get("perm"))),
    "Reshape": _layout(_reshape),
    "Flatten": _layout(_flatten),
    "Squeeze": _layout(_squeeze),
    "Unsqueeze": _layout(_unsqueeze),
    "Slice": _layout(_slice),
    "Gather": _layout(_gather),
    "Concat": op_concat,
    "Identity": op_identity,
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


def lower_model(model, progress: bool = False, probes: list[str] | None = None) -> LoweredModel:
    """Interpret the graph on da4ml traced arrays; ConversionError naming the first unsupported node.

    probes: tensor names to expose as outputs instead of the graph outputs (to localise a mismatch).

    Tracing runs in :func:`l1tagger.rtl.traced.exact_decimal`: da4ml's decimal bookkeeping of ranges and scale
    factors is exact, and a node whose tracing would round it fails with its name.
    """
    with exact_decimal():
        return _lower_model(model, progress, probes)


def _lower_model(model, progress: bool, probes: list[str] | None) -> LoweredModel:
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
    ctx = LowerContext(m, consts)
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
            q = quants[0]
            a = attrs_of(q)
            bits = int(np.asarray(consts[q.input[3]]).ravel()[0])
            f = int(_pow2_frac(consts[q.input[1]], q).ravel()[0])
            ports.append(InputPort(vi.name, shape, bits, f, bool(a.get("signed", 1)), bool(a.get("narrow", 0))))
            env[vi.name] = x
        else:
            ports.append(InputPort(vi.name, shape, 1, 0, False, quantized=False))
            env[vi.name] = x.quantize(0, 1, 0, "WRAP", "TRN")
    counts: dict[str, int] = {}
    nodes = list(g.node)
    if progress:
        from tqdm import tqdm

        nodes = tqdm(nodes, desc="lowering to da4ml", unit="node")
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
    return LoweredModel(comb=comb, inputs=ports, outputs=oports, n_nodes=len(g.node), op_counts=counts)
