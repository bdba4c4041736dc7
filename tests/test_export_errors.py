"""Export and reference refuse what they cannot represent exactly, naming the problem."""

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from l1tagger.errors import ExportError, VerificationError
from l1tagger.export.export import check_power_of_two
from l1tagger.export.intref import run_intref
from l1tagger.export.opset import check_supported

torch.set_num_threads(1)


def _model(nodes, inits=(), inputs=(("x", [2, 3]),)):
    from qonnx.core.modelwrapper import ModelWrapper

    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[helper.make_tensor(n, TensorProto.FLOAT, np.shape(v), np.ravel(v)) for n, v in inits],
    )
    from qonnx.transformation.infer_shapes import InferShapes

    m = ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    return m.transform(InferShapes())


def _quant(inp, out, scale):
    node = helper.make_node("Quant", [inp, f"{out}_s", f"{out}_z", f"{out}_b"], [out],
                            domain="qonnx.custom_op.general", signed=1, narrow=0, rounding_mode="ROUND")
    return node, [(f"{out}_s", np.float32(scale)), (f"{out}_z", np.float32(0)), (f"{out}_b", np.float32(8))]


def test_unsupported_op_named():
    m = _model([helper.make_node("Exp", ["x"], ["y"], name="attn_exp")])
    with pytest.raises(ExportError, match="'Exp'.*attn_exp"):
        check_supported(m.model)


def test_non_power_of_two_scale_named():
    q, inits = _quant("x", "y", 0.3)
    q.name = "Quant_7"
    m = _model([q], inits)
    with pytest.raises(ExportError, match="Quant_7.*power of two"):
        check_power_of_two(m)


def test_intref_rejects_off_grid_float_in_arithmetic():
    q, inits = _quant("x", "qx", 2.0**-4)
    m = _model([q, helper.make_node("Mul", ["qx", "w"], ["y"], name="mul_w")], inits + [("w", np.float32([3 * 2.0**-60, 1, 1]))])
    with pytest.raises(VerificationError, match="mul_w"):
        run_intref(m, {"x": np.ones((2, 3), np.float32)})


def test_intref_quant_rounding_matches_qonnx():
    from qonnx.core.onnx_exec import execute_onnx

    rng = np.random.default_rng(0)
    x = (rng.integers(-3000, 3000, size=(2, 3)) / 256.0).astype(np.float32)  # frac 8, exact halves included
    for mode in ("ROUND", "FLOOR"):
        q1, i1 = _quant("x", "a", 2.0**-8)
        q2, i2 = _quant("a", "y", 2.0**-3)
        q2.attribute[-1].s = mode.encode()
        m = _model([q1, q2], i1 + i2)
        ref = execute_onnx(m, {"x": x})["y"]
        ir = run_intref(m, {"x": x})["y"]
        assert np.array_equal(ref.astype(np.float64), ir.value()), mode
