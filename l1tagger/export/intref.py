"""An independent integer emulation of a cleaned l1tagger QONNX graph (numpy int64, no float arithmetic).

Every tensor is held as ``Fx(v, frac)``: int64 array ``v`` with value ``v * 2^-frac``. Quant nodes read their scale
(must be a power of two), zero point (must be 0), bit width, signedness, narrow flag and rounding mode, and round /
saturate on integers; MatMul/Add/Mul are exact integer arithmetic (fraction bits add or align); FirmwareSoftmax is
:func:`l1tagger.qat.softmax.softmax_int`; layout ops move integers. Float data only enters where the graph itself
starts from floats: graph inputs and weight initializers, which are quantized by their Quant node with an exact
float64 division by a power of two. A float tensor used directly by arithmetic (e.g. a 0/1 mask) must be exactly
representable on a fixed-point grid, else VerificationError.

This is deliberately a different implementation from qonnx's execution (onnxruntime float32 per node), so agreement
of the two is evidence that the float32 reference is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from onnx import helper, numpy_helper

from l1tagger.errors import VerificationError
from l1tagger.export.custom_ops import spec_of_node
from l1tagger.qat.softmax import softmax_int

MAX_FRAC = 48


@dataclass
class Fx:
    """Fixed-point tensor: value = v * 2^-frac (v int64)."""

    v: np.ndarray
    frac: int

    def value(self) -> np.ndarray:
        return self.v.astype(np.float64) * (2.0 ** -self.frac)


def _log2_exact(scale: float, node) -> int:
    m, e = math.frexp(float(scale))
    if m != 0.5:
        raise VerificationError(f"Quant node {node.name!r}: scale {scale!r} is not a power of two")
    return -(e - 1)  # scale = 2^(e-1) = 2^-frac


def _round_shift(v: np.ndarray, s: int, mode: str, node) -> np.ndarray:
    """round(v / 2^s) for s > 0 on int64 with the Quant node's rounding mode."""
    q = v >> s  # floor
    if mode == "FLOOR":
        return q
    rem = v - (q << s)
    half = np.int64(1) << (s - 1)
    if mode in ("ROUND", "HALF_EVEN"):
        return q + ((rem > half) | ((rem == half) & ((q & 1) == 1)))
    if mode == "CEIL":
        return q + (rem > 0)
    if mode == "HALF_UP":  # qonnx: sign(x) * floor(|x| + 0.5), i.e. half away from zero
        return np.where(v >= 0, q + (rem >= half), q + (rem > half))
    raise VerificationError(f"Quant node {node.name!r}: rounding mode {mode!r} not supported by the integer reference")


def _round_float(x: np.ndarray, mode: str, node) -> np.ndarray:
    if mode in ("ROUND", "HALF_EVEN"):
        return np.round(x)
    if mode == "FLOOR":
        return np.floor(x)
    if mode == "CEIL":
        return np.ceil(x)
    if mode == "HALF_UP":
        return np.sign(x) * np.floor(np.abs(x) + 0.5)
    raise VerificationError(f"Quant node {node.name!r}: rounding mode {mode!r} not supported by the integer reference")


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


class IntReference:
    """Integer interpreter over a cleaned QONNX ModelWrapper."""

    def __init__(self, model):
        self.model = model
        self.graph = model.graph
        self.inits = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}

    # ------------------------------------------------------------------ helpers
    def _attr(self, node, name, default=None):
        for a in node.attribute:
            if a.name == name:
                v = helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        return default

    def _fx(self, env, name, node) -> Fx:
        t = env[name]
        if isinstance(t, Fx):
            return t
        fx = to_fx(t, f"tensor {name!r} (input of node {node.name!r})")
        env[name] = fx
        return fx

    def _plain(self, env, name) -> np.ndarray:
        t = env[name]
        return t.v if isinstance(t, Fx) else np.asarray(t)

    # ------------------------------------------------------------------ ops
    def _quant(self, node, env):
        x = env[node.input[0]]
        scale = np.asarray(env[node.input[1]]).reshape(-1)
        zp = np.asarray(env[node.input[2]]).reshape(-1)
        bits = float(np.asarray(env[node.input[3]]).reshape(-1)[0])
        if scale.size != 1 or zp.size != 1 or zp[0] != 0:
            raise VerificationError(f"Quant node {node.name!r}: needs a scalar scale and zero point 0")
        if bits != int(bits):
            raise VerificationError(f"Quant node {node.name!r}: non-integer bit width {bits}")
        bits = int(bits)
        t = _log2_exact(scale[0], node)
        signed, narrow = int(self._attr(node, "signed", 1)), int(self._attr(node, "narrow", 0))
        mode = str(self._attr(node, "rounding_mode", "ROUND")).upper()
        if isinstance(x, Fx):
            s = x.frac - t
            q = x.v << (-s) if s <= 0 else _round_shift(x.v, s, mode, node)
        else:  # float graph input / weight: exact float64 division by a power of two
            q = _round_float(np.asarray(x, np.float64) * (2.0**t), mode, node).astype(np.int64)
        if signed:
            lo, hi = -(1 << (bits - 1)) + narrow, (1 << (bits - 1)) - 1
        else:
            lo, hi = 0, (1 << bits) - 1 - narrow
        return Fx(np.clip(q, lo, hi), t)

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

    def _run_node(self, node, env):
        op = node.op_type
        if op == "Quant":
            return self._quant(node, env)
        if op == "FirmwareSoftmax":
            return self._softmax(node, env)
        if op == "MatMul":
            a, b = self._fx(env, node.input[0], node), self._fx(env, node.input[1], node)
            return Fx(np.matmul(a.v, b.v), a.frac + b.frac)
        if op == "Mul":
            a, b = self._fx(env, node.input[0], node), self._fx(env, node.input[1], node)
            return Fx(a.v * b.v, a.frac + b.frac)
        if op == "Add":
            va, vb, f = _align(self._fx(env, node.input[0], node), self._fx(env, node.input[1], node))
            return Fx(va + vb, f)
        if op == "Relu":
            a = self._fx(env, node.input[0], node)
            return Fx(np.maximum(a.v, 0), a.frac)
        if op == "Concat":
            parts = [self._fx(env, n, node) for n in node.input]
            f = max(p.frac for p in parts)
            return Fx(np.concatenate([p.v << (f - p.frac) for p in parts], axis=int(self._attr(node, "axis"))), f)
        layout = {
            "Transpose": lambda v: np.transpose(v, self._attr(node, "perm")),
            "Reshape": lambda v: self._reshape(v, self._plain(env, node.input[1])),
            "Flatten": lambda v: v.reshape(int(np.prod(v.shape[: self._attr(node, "axis", 1)])), -1),
            "Squeeze": lambda v: np.squeeze(v, axis=tuple(int(a) for a in self._plain(env, node.input[1])))
            if len(node.input) > 1 else np.squeeze(v),
            "Unsqueeze": lambda v: self._unsqueeze(v, self._plain(env, node.input[1])),
            "Gather": lambda v: np.take(v, self._plain(env, node.input[1]), axis=int(self._attr(node, "axis", 0))),
            "Slice": lambda v: self._slice(v, node, env),
            "Identity": lambda v: v,
        }
        if op in layout:
            src = env[node.input[0]]
            if isinstance(src, Fx):
                return Fx(layout[op](src.v), src.frac)
            return layout[op](np.asarray(src))
        raise VerificationError(f"integer reference: unsupported op {op!r} in node {node.name!r}")

    @staticmethod
    def _reshape(v, shape):
        shape = [int(s) for s in shape]
        shape = [v.shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return v.reshape(shape)

    @staticmethod
    def _unsqueeze(v, axes):
        out_rank = v.ndim + len(axes)
        for a in sorted(int(x) % out_rank for x in axes):
            v = np.expand_dims(v, a)
        return v

    def _slice(self, v, node, env):
        starts, ends = self._plain(env, node.input[1]), self._plain(env, node.input[2])
        axes = self._plain(env, node.input[3]) if len(node.input) > 3 and node.input[3] else range(len(starts))
        steps = self._plain(env, node.input[4]) if len(node.input) > 4 and node.input[4] else [1] * len(starts)
        idx = [slice(None)] * v.ndim
        for s, e, a, st in zip(starts, ends, axes, steps):
            idx[int(a)] = slice(int(s), int(e), int(st))
        return v[tuple(idx)]

    # ------------------------------------------------------------------ run
    def run(self, inputs: dict[str, np.ndarray], return_all: bool = False) -> dict:
        """Execute; returns {output name: Fx} (every tensor when return_all)."""
        env: dict = dict(self.inits)
        for vi in self.graph.input:
            if vi.name in self.inits:
                continue
            if vi.name not in inputs:
                raise VerificationError(f"integer reference: graph input {vi.name!r} not given")
            env[vi.name] = np.asarray(inputs[vi.name], dtype=np.float64)
        for node in self.graph.node:
            out = self._run_node(node, env)
            env[node.output[0]] = out
        if return_all:
            return {k: v for k, v in env.items() if k not in self.inits}
        res = {}
        for o in self.graph.output:
            t = env[o.name]
            res[o.name] = t if isinstance(t, Fx) else to_fx(t, f"graph output {o.name!r}")
        return res


def run_intref(model, inputs: dict[str, np.ndarray], return_all: bool = False) -> dict:
    """Convenience wrapper: ``IntReference(model).run(inputs, return_all)``."""
    return IntReference(model).run(inputs, return_all)
