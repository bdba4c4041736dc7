"""Tiny hand-built QONNX graphs (onnx.helper; Quant nodes of domain qonnx.custom_op.general) used by the RTL
tests and as a minimal worked example of the graph contract the RTL route consumes."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper

from l1tagger.qat.softmax import ONNX_DOMAIN, SoftmaxSpec

Q = "qonnx.custom_op.general"


class GraphBuilder:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, value, name=None):
        name = name or f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def int_const(self, value, name=None):
        name = name or f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.int64), name))
        return name

    def node(self, op, inputs, domain="", **attrs):
        self.n += 1
        out = f"{op}_{self.n}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.n}", domain=domain, **attrs))
        return out

    def quant(self, x, frac, bits=8, signed=1, rounding="FLOOR", narrow=0):
        return self.node("Quant", [x, self.const(2.0**-frac), self.const(0.0), self.const(float(bits))], domain=Q,
                         signed=signed, narrow=narrow, rounding_mode=rounding)

    def weight(self, shape, frac, rng, bits=6):
        w = rng.integers(-(2 ** (bits - 1)) + 1, 2 ** (bits - 1), size=shape) * 2.0**-frac
        return self.quant(self.const(w), frac, bits, rounding="ROUND", narrow=1)

    def model(self, inputs, outputs) -> ModelWrapper:
        g = helper.make_graph(self.nodes, "rtl_test", inputs, outputs, initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(Q, 1),
                                                helper.make_opsetid(ONNX_DOMAIN, 1)])
        return ModelWrapper(m)


def tiny_attention(n: int = 4, f: int = 3, d: int = 4, topk: int = 0, seed: int = 0, rounding: str = "FLOOR",
                   with_mask_mul: bool = True) -> ModelWrapper:
    """x (1,n,f), mask (1,n) -> embed -> relu -> single-head attention (firmware softmax, optional top-k)
    -> mean-free pooling by flatten -> 2 logits."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder()
    x = b.quant("x", 4)
    h = b.node("MatMul", [x, b.weight((f, d), 5, rng)])
    h = b.quant(b.node("Add", [h, b.quant(b.const(rng.integers(-20, 20, d) / 64), 6, 10, rounding="ROUND")]), 4,
                rounding=rounding)
    h = b.quant(b.node("Relu", [h]), 4, signed=0)
    mask3 = b.node("Unsqueeze", ["mask", b.int_const([1])])
    if with_mask_mul:
        mcol = b.node("Unsqueeze", ["mask", b.int_const([2])])
        h = b.quant(b.node("Mul", [h, mcol]), 4, signed=0)
    qk = b.quant(b.node("MatMul", [h, b.weight((d, d), 5, rng)]), 3)
    kk = b.quant(b.node("MatMul", [h, b.weight((d, d), 5, rng)]), 3)
    v = b.quant(b.node("MatMul", [h, b.weight((d, d), 5, rng)]), 3)
    att = b.quant(b.node("MatMul", [qk, b.node("Transpose", [kk], perm=[0, 2, 1])]), 2, bits=6)
    spec = SoftmaxSpec.default_for(6, 2, n, out_bits=6, rounding="floor")
    w = b.node("FirmwareSoftmax", [att, mask3], domain=ONNX_DOMAIN, spec=spec.to_json(), topk=int(topk))
    w = b.quant(w, spec.out_frac, bits=spec.out_bits, signed=0, rounding="ROUND")
    o = b.quant(b.node("MatMul", [w, v]), 3)
    flat = b.node("Flatten", [o], axis=1)
    logits = b.node("MatMul", [flat, b.weight((n * d, 2), 5, rng)])
    b.nodes[-1].output[0] = "pre"
    b.quant("pre", 3, bits=10)
    b.nodes[-1].output[0] = "logits"
    return b.model(
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n, f]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])],
    )


def random_feed(n_jets: int, n: int = 4, f: int = 3, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.integers(-128, 128, size=(n_jets, n, f)) / 16).astype(np.float32)
    n_real = rng.integers(1, n + 1, size=n_jets)
    mask = (np.arange(n)[None, :] < n_real[:, None]).astype(np.float32)
    return {"x": x, "mask": mask}
