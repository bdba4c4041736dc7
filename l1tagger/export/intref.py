"""An independent integer emulation of a cleaned l1tagger QONNX graph (numpy int64, no float arithmetic).

Every tensor is held as ``Fx(v, frac)``: int64 array ``v`` with value ``v * 2^-frac``. Quant nodes read their scale
(must be a power of two), zero point (must be 0), bit width, signedness, narrow flag and rounding mode, and round /
saturate on integers; MatMul/Add/Mul are exact integer arithmetic (fraction bits add or align); FirmwareSoftmax is
:func:`l1tagger.contract.softmax.softmax_int`; the on-chip features of L1 words (L1ParticleFeatures, L1WordMask,
L1PairFeatures) are :func:`l1tagger.contract.l1features.features_np` on the integer words; layout ops move integers. Float data only enters where the graph itself
starts from floats: graph inputs and weight initializers, which are quantized by their Quant node with an exact
float64 division by a power of two. A float tensor used directly by arithmetic (e.g. a 0/1 mask) must be exactly
representable on a fixed-point grid, else VerificationError.

This is deliberately a different implementation from qonnx's execution (onnxruntime float32 per node), so agreement
of the two is evidence that the float32 reference is exact. Semantics (op set, Quant decoding, the meaning of each
rounding mode, layout ops, the softmax) come from the torch-free contract :mod:`l1tagger.contract`; the arithmetic
(integer rounding shifts, alignment, saturation) is this module's own. One op per entry of :data:`OPS`.

Graph inputs must have the graph's declared shape except the batch axis (DataError naming the input otherwise).
A float input value beyond a Quant's range saturates (+-inf and huge values included, as in qonnx); NaN raises
DataError naming the tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import numpy_helper

from l1tagger.contract import l1features, pairtable
from l1tagger.contract.opset import SINGLE_INPUT_LAYOUT_OPS, concat, layout
from l1tagger.contract.quant import ROUNDING, decode_quant
from l1tagger.contract.softmax import softmax_int, spec_of_node
from l1tagger.errors import DataError, VerificationError

MAX_FRAC = 48


@dataclass
class Fx:
    """Fixed-point tensor: value = v * 2^-frac (v int64)."""

    v: np.ndarray
    frac: int

    def value(self) -> np.ndarray:
        return self.v.astype(np.float64) * (2.0 ** -self.frac)


def _round_shift(v: np.ndarray, s: int, mode: str, node) -> np.ndarray:
    """round(v / 2^s) for s > 0 on int64, in integers, with the qonnx rounding mode ``mode``.

    The meaning of each mode is :data:`l1tagger.contract.quant.ROUNDING` (qonnx's functions); this is an independent
    integer implementation of it (floor shift, remainder against half an LSB), tested against that table.
    """
    q = v >> s  # floor
    rem = v - (q << s)
    half = np.int64(1) << (s - 1)
    pos = v >= 0
    up = {
        "FLOOR": np.zeros(v.shape, bool),
        "CEIL": rem > 0,
        "DOWN": ~pos & (rem > 0),  # toward zero
        "UP": pos & (rem > 0),  # away from zero
        "ROUND": (rem > half) | ((rem == half) & ((q & 1) == 1)),  # ties to even
        "HALF_UP": np.where(pos, rem >= half, rem > half),  # ties away from zero
        "HALF_DOWN": np.where(pos, rem > half, rem >= half),  # ties toward zero
    }
    up["HALF_EVEN"] = up["ROUND"]
    if mode not in up:
        raise VerificationError(f"Quant node {node.name!r}: rounding mode {mode!r} not supported by the integer "
                                f"reference")
    return q + up[mode]


def to_fx(x: np.ndarray, what: str) -> Fx:
    """Exact fixed-point image of a float array (smallest frac in [0, MAX_FRAC]); VerificationError if none."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise VerificationError(f"{what}: non-finite values")
    for f in range(MAX_FRAC + 1):
        s = x * (2.0**f)
        if np.array_equal(s, np.round(s)):
            return Fx(s.astype(np.int64), f)
    raise VerificationError(f"{what}: values are not on any fixed-point grid (2^-{MAX_FRAC} or coarser)")


def _align(a: Fx, b: Fx) -> tuple[np.ndarray, np.ndarray, int]:
    f = max(a.frac, b.frac)
    return a.v << (f - a.frac), b.v << (f - b.frac), f


def declared_shape(vi) -> tuple[int, ...] | None:
    """The declared shape of a graph input (0 = symbolic / unknown dimension), None when it has none."""
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    return tuple(int(d.dim_value) if d.HasField("dim_value") else 0 for d in t.shape.dim)


def check_input_shape(vi, value: np.ndarray) -> None:
    """DataError naming the input when ``value`` does not have the declared shape (the batch axis is free)."""
    want = declared_shape(vi)
    if want is None:
        return
    got = tuple(np.shape(value))
    if len(got) != len(want) or any(w > 0 and g != w for g, w in zip(got[1:], want[1:])):
        expected = ("B",) + tuple(w if w > 0 else "?" for w in want[1:]) if want else ()
        raise DataError(f"graph input {vi.name!r}: shape {got} does not match the graph's declared shape "
                        f"{'(' + ', '.join(str(e) for e in expected) + ')'} (B = any batch size)")


class IntReference:
    """Integer interpreter over a cleaned QONNX ModelWrapper."""

    def __init__(self, model):
        self.model = model
        self.graph = model.graph
        self.inits = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}

    # ------------------------------------------------------------------ helpers
    def _fx(self, env, name, node) -> Fx:
        t = env[name]
        if isinstance(t, Fx):
            return t
        fx = to_fx(t, f"tensor {name!r} (input of node {node.name!r})")
        env[name] = fx
        return fx

    @staticmethod
    def _value(env, name):
        """A constant input's value (shape, indices, ...), or None when the input is absent."""
        if not name:
            return None
        t = env[name]
        return t.value() if isinstance(t, Fx) else np.asarray(t)

    # ------------------------------------------------------------------ ops
    def _quant(self, node, env):
        x = env[node.input[0]]
        spec = decode_quant(node, *(np.asarray(env[i]) for i in node.input[1:4]), error=VerificationError)
        t, mode, lo, hi = spec.frac, spec.rounding, spec.int_min, spec.int_max
        if isinstance(x, Fx):
            s = x.frac - t
            q = x.v << (-s) if s <= 0 else _round_shift(x.v, s, mode, node)
            return Fx(np.clip(q, lo, hi), t)
        # float graph input / weight: exact float64 scaling by a power of two, saturated in float before the int
        # cast (so +-inf and values beyond int64 saturate like qonnx instead of wrapping), then rounded
        y = np.asarray(x, np.float64) * (2.0**t)
        if np.isnan(y).any():
            idx = tuple(int(i) for i in np.argwhere(np.isnan(y))[0])
            raise DataError(f"Quant node {node.name!r}: input {node.input[0]!r} holds NaN at index {idx}")
        return Fx(ROUNDING[mode].numpy(np.clip(y, lo, hi)).astype(np.int64), t)

    def _softmax(self, node, env):
        spec, topk = spec_of_node(node)
        x = self._fx(env, node.input[0], node)
        s = spec.in_frac - x.frac
        if s >= 0:
            q = x.v << s
        elif np.all((x.v & ((1 << -s) - 1)) == 0):
            q = x.v >> (-s)
        else:
            raise VerificationError(
                f"FirmwareSoftmax node {node.name!r}: input has {x.frac} fraction bits, spec in_frac {spec.in_frac}"
            )
        mask = None
        if len(node.input) > 1 and node.input[1]:
            mask = np.broadcast_to(self._fx(env, node.input[1], node).v != 0, q.shape)
        return Fx(softmax_int(q, mask, topk, spec), spec.out_frac)

    def _l1features(self, node, env):
        spec = l1features.spec_of_node(node)
        kind = l1features.kind_of(node.op_type)
        w = self._fx(env, node.input[0], node)
        if w.frac < 0 or np.any(w.v & ((np.int64(1) << w.frac) - 1)):
            raise VerificationError(f"{node.op_type} node {node.name!r}: input {node.input[0]!r} is not on the unit "
                                    f"grid of integer words ({w.frac} fraction bits)")
        q = l1features.features_np(w.v >> w.frac, spec, (kind,), f"{node.op_type} node {node.name!r} words")[kind]
        return Fx(q.astype(np.int64), l1features.output_grid(spec, kind)[2])

    def _pairtable(self, node, env):
        spec = pairtable.spec_of_node(node)
        x, t = self._fx(env, node.input[0], node), self._fx(env, node.input[1], node)
        pairtable.check_shapes(x.v.shape, t.v.shape, spec, f"L1PairTable node {node.name!r}")
        if x.frac < 0:
            raise VerificationError(f"L1PairTable node {node.name!r}: input with negative fraction bits")
        idx = pairtable.indices_int(x.v, x.frac, spec)
        acc = np.zeros(idx.shape[:-1] + (spec.n_heads,), np.int64)
        for f in range(spec.n_features):  # exact integer sum of the table entries
            acc += np.moveaxis(t.v[f][:, idx[..., f]], 0, -1)
        return Fx(acc, t.frac)

    def _matmul(self, node, env):
        a, b = self._fx(env, node.input[0], node), self._fx(env, node.input[1], node)
        return Fx(np.matmul(a.v, b.v), a.frac + b.frac)

    def _mul(self, node, env):
        a, b = self._fx(env, node.input[0], node), self._fx(env, node.input[1], node)
        return Fx(a.v * b.v, a.frac + b.frac)

    def _add(self, node, env):
        va, vb, f = _align(self._fx(env, node.input[0], node), self._fx(env, node.input[1], node))
        return Fx(va + vb, f)

    def _relu(self, node, env):
        a = self._fx(env, node.input[0], node)
        return Fx(np.maximum(a.v, 0), a.frac)

    def _concat(self, node, env):
        parts = [self._fx(env, n, node) for n in node.input]
        f = max(p.frac for p in parts)
        return Fx(concat(node, [p.v << (f - p.frac) for p in parts], error=VerificationError), f)

    def _layout(self, node, env):
        src = env[node.input[0]]
        consts = [self._value(env, n) for n in node.input[1:]]
        if isinstance(src, Fx):
            return Fx(layout(node, src.v, consts, error=VerificationError), src.frac)
        return layout(node, np.asarray(src), consts, error=VerificationError)

    # ------------------------------------------------------------------ run
    def run(self, inputs: dict[str, np.ndarray], return_all: bool = False) -> dict:
        """Execute; returns {output name: Fx} (every tensor when return_all)."""
        env: dict = dict(self.inits)
        for vi in self.graph.input:
            if vi.name in self.inits:
                continue
            if vi.name not in inputs:
                raise VerificationError(f"integer reference: graph input {vi.name!r} not given")
            value = np.asarray(inputs[vi.name], dtype=np.float64)
            check_input_shape(vi, value)
            env[vi.name] = value
        for node in self.graph.node:
            fn = OPS.get(node.op_type)
            if fn is None:
                raise VerificationError(f"integer reference: unsupported op {node.op_type!r} in node {node.name!r}")
            env[node.output[0]] = fn(self, node, env)
        if return_all:
            return {k: v for k, v in env.items() if k not in self.inits}
        res = {}
        for o in self.graph.output:
            t = env[o.name]
            res[o.name] = t if isinstance(t, Fx) else to_fx(t, f"graph output {o.name!r}")
        return res


#: op_type -> method(self, node, env) -> Fx or float array; the op set of l1tagger.contract.opset.SUPPORTED_OPS
OPS = {
    "Quant": IntReference._quant,
    "FirmwareSoftmax": IntReference._softmax,
    **{op: IntReference._l1features for op in l1features.OP_TYPES},
    pairtable.PAIR_TABLE_OP: IntReference._pairtable,
    "MatMul": IntReference._matmul,
    "Mul": IntReference._mul,
    "Add": IntReference._add,
    "Relu": IntReference._relu,
    "Concat": IntReference._concat,
    **{op: IntReference._layout for op in SINGLE_INPUT_LAYOUT_OPS},
}


def run_intref(model, inputs: dict[str, np.ndarray], return_all: bool = False) -> dict:
    """Convenience wrapper: ``IntReference(model).run(inputs, return_all)``."""
    return IntReference(model).run(inputs, return_all)
