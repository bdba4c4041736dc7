"""Tiny hand-built contract graphs (onnx.helper + qonnx Quant + FirmwareSoftmax) for converter regression tests.

:func:`attention_block` builds one multi-head attention block with N != C != d so that every measured pitfall
of stock hls4ml (issue 5) is exercised by a graph small enough to compile with g++ in seconds:

    x (1,N,C) -Quant-> per-particle Linear (MatMul + bias Add) -Quant-> q, k, v   (pitfalls 1, 2, 3)
    Reshape/Transpose to heads; S = q @ k^T (act x act) -Quant->                 (pitfalls 4, 6)
    FirmwareSoftmax(S (1,H,N,N), mask) -Quant-> A; O = A @ V (act x act)          (pitfalls 4, 5)
    merge heads, output Linear -> Quant -> out (1,N,C_out)

:func:`l1words_graph` builds the smallest graph with the three ops that compute features on chip from L1 particle
words (``L1ParticleFeatures``, ``L1WordMask``, ``L1PairFeatures``, docs/l1_inputs.md), feeding a masked firmware
softmax, so the converter, the RTL lowering and the references can be checked on edge and random words:

    words (1,N,n_fields) -Quant(scale 1)-> x, mask, pair;  s = x @ a -Quant->,  u = pair @ b
    FirmwareSoftmax(u + s^T -Quant->, mask) -Quant-> out (1,N,N);  graph outputs out, x, pair
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from l1tagger.qat.softmax import ONNX_DOMAIN, SoftmaxSpec

QDOMAIN = "qonnx.custom_op.general"


class _G:
    def __init__(self, seed: int):
        self.nodes, self.inits, self.rng, self.i = [], [], np.random.default_rng(seed), 0

    def name(self, p):
        self.i += 1
        return f"{p}_{self.i}"

    def init(self, value, p="c"):
        n = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), n))
        return n

    def init_i64(self, value, p="shape"):
        n = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.int64), n))
        return n

    def node(self, op, inputs, domain="", **attrs):
        n = self.name(op)
        out = f"{n}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=n, domain=domain, **attrs))
        return out

    def quant(self, x, bits, frac, signed=True, narrow=False, rounding="ROUND"):
        return self.node("Quant", [x, self.init(2.0**-frac), self.init(0.0), self.init(float(bits))], domain=QDOMAIN,
                         signed=int(signed), narrow=int(narrow), rounding_mode=rounding)

    def weight(self, shape, bits=8, frac=6):
        w = self.rng.normal(0, 0.5, size=shape)  # off-grid floats; the Quant node puts them on the grid
        return self.quant(self.init(w, "w"), bits, frac, narrow=True)

    def linear(self, x, c_in, c_out, act_bits, act_frac, rounding):
        y = self.node("MatMul", [x, self.weight((c_in, c_out))])
        y = self.node("Add", [y, self.weight((c_out,), 8, 5)])
        return self.quant(y, act_bits, act_frac, rounding=rounding)


def attention_block(n: int = 6, c: int = 4, heads: int = 2, d_head: int = 3, c_out: int = 5, topk: int = 0,
                    rounding: str = "ROUND", in_bits: int = 8, in_frac: int = 4, seed: int = 0):
    """A qonnx ModelWrapper (batch 1) of one attention block; graph inputs ``x`` (1,n,c) and ``mask`` (1,n)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    g = _G(seed)
    act_bits, act_frac = 10, 5
    x = g.quant("x", in_bits, in_frac, rounding=rounding)
    qkv = []
    for _ in range(3):
        t = g.linear(x, c, heads * d_head, act_bits, act_frac, rounding)
        t = g.node("Reshape", [t, g.init_i64([1, n, heads, d_head])])
        qkv.append(g.node("Transpose", [t], perm=[0, 2, 1, 3]))  # (1,H,N,d)
    q, k, v = qkv
    kt = g.node("Transpose", [k], perm=[0, 1, 3, 2])  # (1,H,d,N)
    s = g.node("MatMul", [q, kt])  # act x act, contraction d
    spec = SoftmaxSpec.default_for(8, 3, n, 8, "half_even" if rounding == "ROUND" else "floor")
    s = g.quant(s, spec.in_bits, spec.in_frac, rounding=rounding)
    m = g.node("Unsqueeze", ["mask", g.init_i64([1, 2])])  # (1,1,1,N)
    a = g.node("FirmwareSoftmax", [s, m], domain=ONNX_DOMAIN, spec=json.dumps(spec.to_dict()), topk=int(topk))
    a = g.quant(a, spec.out_bits, spec.out_frac, signed=False, rounding=rounding)
    o = g.quant(g.node("MatMul", [a, v]), act_bits, act_frac, rounding=rounding)  # (1,H,N,d)
    o = g.node("Transpose", [o], perm=[0, 2, 1, 3])
    o = g.node("Reshape", [o, g.init_i64([1, n, heads * d_head])])
    y = g.linear(o, heads * d_head, c_out, act_bits, act_frac, rounding)
    g.nodes.append(helper.make_node("Identity", [y], ["out"], name="output_identity"))
    graph = helper.make_graph(
        g.nodes, "attention_block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n, c]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, n, c_out])],
        initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(QDOMAIN, 1),
                                                    helper.make_opsetid(ONNX_DOMAIN, 1)])
    return ModelWrapper(model).transform(InferShapes())


def random_inputs(n_jets: int, n: int, c: int, in_frac: int = 4, seed: int = 1) -> dict:
    """Off-grid features (incl. exact half-LSB ties and out-of-range values) and random 0/1 masks."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2.5, size=(n_jets, n, c))
    ties = rng.random(x.shape) < 0.2  # exactly halfway between grid points: tests half-even input rounding
    x[ties] = (np.floor(x[ties] * 2**in_frac) + 0.5) / 2**in_frac
    x[rng.random(x.shape) < 0.02] *= 40  # beyond the input range: tests saturation
    n_real = rng.integers(1, n + 1, size=n_jets)
    mask = (np.arange(n)[None, :] < n_real[:, None]).astype(np.float32)
    return {"x": x.astype(np.float32), "mask": mask}


def save(model, path) -> None:
    onnx.save(model.model, str(path))


def l1words_graph(spec=None, n: int = 6, rounding: str = "FLOOR", seed: int = 0):
    """A qonnx ModelWrapper (batch 1) of the on-chip L1 word features (``spec``: an
    :class:`~l1tagger.contract.l1features.L1FeatureSpec`, default every particle feature) and a masked softmax over a
    per-particle score plus the pair bias. Graph input ``words`` (1, n, n_fields); outputs ``out`` (the attention
    weights, 1, n, n), ``x`` (1, n, F) and ``pair`` (1, n, n, 4)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    from l1tagger.contract.l1features import MASK_OP, PAIR_OP, PARTICLE_FEATURES, PARTICLE_OP, L1FeatureSpec

    spec = spec if spec is not None else L1FeatureSpec(particle_features=PARTICLE_FEATURES)
    g = _G(seed)
    w = g.quant("words", spec.format.word_bits, 0, rounding=rounding)
    for op, out in ((PARTICLE_OP, "x"), (MASK_OP, "mask"), (PAIR_OP, "pair")):
        g.nodes.append(helper.make_node(op, [w], [out], name=out, domain=ONNX_DOMAIN, spec=spec.to_json()))
    a = g.quant(g.init(g.rng.integers(-3, 4, (spec.n_features, 1)) / 4, "a"), 4, 2, narrow=True, rounding=rounding)
    s = g.quant(g.node("MatMul", ["x", a]), 10, 2, rounding=rounding)  # (1,N,1)
    b = g.quant(g.init(g.rng.integers(-3, 4, (4, 1)) / 4, "b"), 4, 2, narrow=True, rounding=rounding)
    u = g.node("Squeeze", [g.node("MatMul", ["pair", b]), g.init_i64([3])])  # (1,N,N)
    st = g.node("Transpose", [s], perm=[0, 2, 1])  # (1,1,N)
    sm = SoftmaxSpec.default_for(8, 2, n, 8, "floor" if rounding == "FLOOR" else "half_even")
    logit = g.quant(g.node("Add", [u, st]), sm.in_bits, sm.in_frac, rounding=rounding)
    m3 = g.node("Unsqueeze", ["mask", g.init_i64([1])])  # (1,1,N)
    att = g.node("FirmwareSoftmax", [logit, m3], domain=ONNX_DOMAIN, spec=json.dumps(sm.to_dict()), topk=0)
    att = g.quant(att, sm.out_bits, sm.out_frac, signed=False, rounding=rounding)
    g.nodes.append(helper.make_node("Identity", [att], ["out"], name="output_identity"))
    words = helper.make_tensor_value_info("words", TensorProto.FLOAT, [1, n, spec.format.n_fields])
    graph = helper.make_graph(
        g.nodes, "l1words_tiny", [words],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, n, n]),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n, spec.n_features]),
         helper.make_tensor_value_info("pair", TensorProto.FLOAT, [1, n, n, 4])], initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(QDOMAIN, 1),
                                                    helper.make_opsetid(ONNX_DOMAIN, 1)])
    return ModelWrapper(model).transform(InferShapes())
