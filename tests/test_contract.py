"""The torch-free graph contract (l1tagger.contract): one op set, one rounding table, one set of layout semantics,
used by every walker (hls4ml converter, da4ml lowering, integer reference, estimates) - and checked against the
real tools: qonnx's quant(), ap_fixed (g++ on hls4ml's ap_types headers), da4ml, onnx's reference evaluator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from l1tagger.contract import LAYOUT_OPS, ROUNDING, SUPPORTED_OP_TYPES, QuantSpec, decode_quant, layout
from l1tagger.contract.opset import concat
from l1tagger.errors import ConversionError, DataError

QD = "qonnx.custom_op.general"

#: values in LSBs of the target grid: ties of both signs, non-ties, exact integers, saturation
LSB_VALUES = np.array([0.5, 1.5, 2.5, 3.5, 0.25, 0.75, 1.0, 0.0, 3.49, 3.51, 1.0001, 200.0, 1e30])
LSB_VALUES = np.concatenate([LSB_VALUES, -LSB_VALUES])


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), n) for n, v in inits],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(QD, 1)])


def _wrapper(model):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    return ModelWrapper(model).transform(InferShapes())


def _quant(inp, out, bits, frac, rounding="ROUND", signed=1, narrow=0):
    node = helper.make_node("Quant", [inp, f"{out}_s", f"{out}_z", f"{out}_b"], [out], name=f"q_{out}", domain=QD,
                            signed=signed, narrow=narrow, rounding_mode=rounding)
    return node, [(f"{out}_s", np.float32(2.0**-frac)), (f"{out}_z", np.float32(0)), (f"{out}_b", np.float32(bits))]


# ---------------------------------------------------------------------------------------------- one op set
def test_every_walker_registers_exactly_the_contract_op_set():
    from l1tagger.convert.frontend import HANDLERS
    from l1tagger.export.intref import OPS
    from l1tagger.export.opset import SUPPORTED_OPS
    from l1tagger.report.estimates import OP_ESTIMATORS
    from l1tagger.rtl.lower import OP_HANDLERS

    import l1tagger.contract.opset as contract_opset

    assert SUPPORTED_OPS is contract_opset.SUPPORTED_OPS  # the export check uses the contract's list
    assert set(HANDLERS) == SUPPORTED_OP_TYPES
    assert set(OP_HANDLERS) == SUPPORTED_OP_TYPES
    assert set(OPS) == SUPPORTED_OP_TYPES
    assert set(OP_ESTIMATORS) == SUPPORTED_OP_TYPES
    assert LAYOUT_OPS < SUPPORTED_OP_TYPES


@pytest.mark.parametrize("module", ["l1tagger.export.opset", "l1tagger.contract"])
def test_contract_imports_neither_torch_nor_qonnx(module):
    code = (f"import sys, {module}; bad = [m for m in ('torch', 'qonnx', 'onnxruntime') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---------------------------------------------------------------------------------------------- one rounding table
@pytest.mark.parametrize("mode", sorted(ROUNDING))
@pytest.mark.parametrize("signed,narrow", [(1, 0), (1, 1), (0, 0)])
def test_rounding_table_matches_qonnx_quant_on_ties_of_both_signs(mode, signed, narrow):
    from qonnx.custom_op.general.quant import quant, resolve_rounding_mode

    frac, bits = 3, 6
    x = LSB_VALUES * 2.0**-frac
    want = quant(x, np.float64(2.0**-frac), np.float64(0), np.float64(bits), signed, narrow, mode)
    got = QuantSpec(bool(signed), bool(narrow), bits, frac, mode).apply(x)
    assert np.array_equal(got, want), (mode, x[got != want], got[got != want], want[got != want])
    assert np.array_equal(ROUNDING[mode].numpy(LSB_VALUES), resolve_rounding_mode(mode)(LSB_VALUES))


def test_half_up_is_ties_away_from_zero():
    assert ROUNDING["HALF_UP"].numpy(np.array([-2.5, -1.5, -0.5, 0.5, 2.5])).tolist() == [-3, -2, -1, 1, 3]
    assert ROUNDING["HALF_UP"].ap_fixed == "AP_RND_INF" and ROUNDING["HALF_UP"].da4ml is None


def test_ap_fixed_column_matches_the_table_in_gpp(tmp_path):
    """Each ap_fixed mode of the table, compiled with hls4ml's ap_types headers: a conversion that drops 4 fraction
    bits (as the converter's Quant layer does) gives qonnx's rounding on every value, ties of both signs included.
    AP_RND (the converter's former HALF_UP mapping) is compiled too, to show it differs on negative ties."""
    import hls4ml

    include = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    modes = sorted({r.ap_fixed for r in ROUNDING.values() if r.ap_fixed} | {"AP_RND"})
    body = "\n".join(
        f'    {{ ap_fixed<12, 8, {m}, AP_WRAP> y = x; std::printf("{m} %d %.17g\\n", k, y.to_double()); }}'
        for m in modes)
    (tmp_path / "t.cpp").write_text(
        '#include <cstdio>\n#include "ap_fixed.h"\nint main() {\n  for (int k = -600; k <= 600; k++) {\n'
        "    ap_fixed<16, 8> x = k / 256.0;\n" + body + "\n  }\n  return 0;\n}\n")
    subprocess.run(["g++", "-O0", "-std=c++14", f"-I{include}", "t.cpp", "-o", "t"], cwd=tmp_path, check=True,
                   timeout=300)
    lines = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True, check=True).stdout.split()
    got: dict[str, dict[int, float]] = {}
    for m, k, y in zip(lines[0::3], lines[1::3], lines[2::3]):
        got.setdefault(m, {})[int(k)] = float(y)
    k = np.arange(-600, 601)
    ties = (k % 16) == 8
    for name, r in ROUNDING.items():
        if r.ap_fixed is None:
            continue
        want = r.numpy(k / 16.0) / 16.0  # value in LSBs of the 4-fraction-bit grid, rounded, back to a value
        ap = np.array([got[r.ap_fixed][int(i)] for i in k])
        assert np.array_equal(ap, want), (name, r.ap_fixed, k[ap != want][:5])
        assert ties.sum() > 60 and (k[ties] < 0).any()
    rnd = np.array([got["AP_RND"][int(i)] for i in k])
    assert not np.array_equal(rnd, ROUNDING["HALF_UP"].numpy(k / 16.0) / 16.0)  # the old mapping was wrong


@pytest.mark.parametrize("name", sorted(n for n, r in ROUNDING.items() if r.da4ml or r.da4ml_nonneg))
def test_da4ml_columns_match_the_table(name):
    """da4ml's own interpreter of a traced quantize, for every mode the table maps (any sign / non-negative)."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    r = ROUNDING[name]
    for da4ml_mode, signed in ((r.da4ml, 1), (r.da4ml_nonneg, 0)):
        if da4ml_mode is None:
            continue
        x = FixedVariableArrayInput((64,)).quantize(signed, 4, 6)  # values k / 64
        y = x.quantize(1, 6, 2, "WRAP", da4ml_mode)  # drop 4 fraction bits
        comb = comb_trace(list(x._vars.ravel()), list(y._vars.ravel()), keep_dead_inputs=True)
        k = np.arange(-512, 512) if signed else np.arange(0, 1024)
        vals = (k / 64.0).reshape(-1, 64)
        got = comb.predict(vals, n_threads=1).ravel()
        assert np.array_equal(got, r.numpy(k / 16.0) / 4.0), (name, da4ml_mode)


def test_da4ml_half_up_differs_on_negative_ties_so_the_table_says_none():
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    x = FixedVariableArrayInput((4,)).quantize(1, 2, 1)
    y = x.quantize(1, 3, 0, "WRAP", "RND")
    comb = comb_trace(list(x._vars.ravel()), list(y._vars.ravel()), keep_dead_inputs=True)
    got = comb.predict(np.array([[-2.5, -1.5, -0.5, 1.5]]), n_threads=1).ravel()
    assert got.tolist() == [-2, -1, 0, 2]  # toward +inf: qonnx HALF_UP gives -3, -2, -1, 2
    assert ROUNDING["HALF_UP"].da4ml is None and ROUNDING["HALF_UP"].da4ml_nonneg == "RND"


def test_decode_quant_names_node_and_field():
    node, inits = _quant("x", "y", 8, 4)
    vals = {n: v for n, v in inits}
    spec = decode_quant(node, vals["y_s"], vals["y_z"], vals["y_b"])
    assert (spec.signed, spec.narrow, spec.bits, spec.frac, spec.rounding) == (True, False, 8, 4, "ROUND")
    with pytest.raises(ConversionError, match="q_y.*power of two"):
        decode_quant(node, np.float32(0.3), vals["y_z"], vals["y_b"])
    with pytest.raises(ConversionError, match="q_y.*zero point"):
        decode_quant(node, vals["y_s"], np.float32(1), vals["y_b"])
    with pytest.raises(ConversionError, match="q_y.*scale has 2 values"):
        decode_quant(node, np.float32([0.5, 0.25]), vals["y_z"], vals["y_b"])
    bad, _ = _quant("x", "y", 8, 4, rounding="STOCHASTIC")
    with pytest.raises(ConversionError, match="q_y.*'STOCHASTIC'"):
        decode_quant(bad, vals["y_s"], vals["y_z"], vals["y_b"])


# ---------------------------------------------------------------------------------------------- layout semantics
def _layout_cases():
    """(node, data, constant inputs) covering every single-input layout op, against onnx's reference evaluator."""
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    big = np.iinfo(np.int64).max
    x4 = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    mk = lambda op, n_in, **a: helper.make_node(op, ["x"] + [f"c{i}" for i in range(n_in)], ["y"], name=op, **a)  # noqa: E731
    return [
        (mk("Transpose", 0, perm=[0, 2, 3, 1]), x4, []),
        (mk("Transpose", 0), x4, []),
        (mk("Reshape", 1), x4, [i64(0, -1, 5)]),
        (mk("Reshape", 1, allowzero=0), x4, [i64(2, 0, 20)]),
        (mk("Reshape", 1, allowzero=1), np.zeros((0, 3), np.float32), [i64(3, 0)]),
        (mk("Flatten", 0, axis=2), x4, []),
        (mk("Flatten", 0, axis=-1), x4, []),
        (mk("Flatten", 0, axis=0), x4, []),
        (mk("Squeeze", 1), x4[:, :1, :, :1], [i64(-1, 1)]),
        (mk("Squeeze", 0), x4[:, :1, :, :1], []),
        (mk("Unsqueeze", 1), x4, [i64(-1, 1)]),
        (mk("Slice", 4), x4, [i64(1, -1), i64(big, 0), i64(3, 1), i64(2, -1)]),
        (mk("Slice", 2), x4, [i64(-3, 0), i64(-1, 2)]),
        (mk("Slice", 4), x4, [i64(-1), i64(-big), i64(2), i64(-2)]),
        (mk("Gather", 1, axis=2), x4, [i64(3, -1, 0)]),
        (mk("Gather", 1, axis=-1), x4, [np.array(2, np.int64)]),
        (mk("Identity", 0), x4, []),
    ]


@pytest.mark.parametrize("case", range(len(_layout_cases())))
def test_layout_semantics_match_onnx_reference_evaluator(case):
    from onnx.reference import ReferenceEvaluator

    node, x, consts = _layout_cases()[case]
    inits = [numpy_helper.from_array(c, f"c{i}") for i, c in enumerate(consts)]
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    want = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])).run(
        None, {"x": x})[0]
    got = layout(node, x, consts)
    assert got.shape == want.shape and np.array_equal(got, want), node.op_type
    # constants stored as float64 (the converter keeps constants as float64), INT64_MAX included
    got_f = layout(node, x, [c.astype(np.float64) for c in consts])
    assert np.array_equal(got_f, want)
    # object arrays (da4ml traced variables) move the same way
    assert np.array_equal(layout(node, x.astype(object), consts).astype(np.float32), want)


def test_concat_and_layout_errors_name_the_node():
    node = helper.make_node("Concat", ["a", "b"], ["y"], name="heads_cat", axis=-1)
    assert concat(node, [np.zeros((2, 3)), np.ones((2, 1))]).shape == (2, 4)
    with pytest.raises(ConversionError, match="heads_cat"):
        concat(node, [np.zeros((2, 3)), np.ones((3, 1))])
    rs = helper.make_node("Reshape", ["x", "s"], ["y"], name="rs7")
    with pytest.raises(ConversionError, match="rs7.*cannot become"):
        layout(rs, np.zeros((2, 3)), [np.array([4, 2])])
    with pytest.raises(ConversionError, match="rs7.*constant"):
        layout(rs, np.zeros((2, 3)), [None])


def _allowzero_node():
    return helper.make_node("Reshape", ["d", "s"], ["r"], name="rz", allowzero=1)


def test_reshape_allowzero_in_converter_frontend():
    from l1tagger.convert.frontend import HANDLERS, Const, Frontend

    fe = Frontend(model=None)
    fe.tensors["d"], fe.tensors["s"] = Const(np.zeros((0, 3))), Const(np.array([3.0, 0.0]))
    HANDLERS["Reshape"](fe, _allowzero_node())
    assert fe.tensors["r"].value.shape == (3, 0)  # allowzero=0 would have made it (3, 3) and failed


def test_reshape_allowzero_in_rtl_lowering():
    from l1tagger.rtl.lower import OP_HANDLERS

    (out,) = OP_HANDLERS["Reshape"](_allowzero_node(), [np.zeros((0, 3)), np.array([3, 0])], None)
    assert out.shape == (3, 0)


def test_reshape_allowzero_in_integer_reference():
    from l1tagger.export.intref import run_intref

    m = _model([_allowzero_node(), helper.make_node("Identity", ["r"], ["y"], name="out")],
               [("d", [0, 3])], [("y", None)], [("s", np.array([3, 0], np.int64))])
    assert run_intref(m, {"d": np.zeros((0, 3))})["y"].v.shape == (3, 0)


def test_reshape_allowzero_in_estimates():
    from l1tagger.report.estimates import estimate_graph

    nodes = [_allowzero_node()]
    q1, i1 = _quant("x", "qx", 8, 4)
    q2, i2 = _quant("r", "qr", 8, 4)
    nodes += [q1, q2, helper.make_node("MatMul", ["qx", "qr"], ["mm"], name="mm")]
    q3, i3 = _quant("mm", "y", 8, 4)
    m = _model(nodes + [q3], [("x", [1, 3])], [("y", None)],
               [("d", np.zeros((0, 3), np.float32)), ("s", np.array([3, 0], np.int64))] + i1 + i2 + i3)
    est = estimate_graph(m)
    mm = next((layer for layer in est["layers"] if layer["name"] == "mm"), None)
    # (1, 3) @ (3, 0): no multiplier (a product by an empty constant folds to a constant and is not listed at all)
    assert mm is None or mm["products"] == 0
    assert est["total"]["ebops"] == 0


# ---------------------------------------------------------------------------------------------- integer reference
def _two_quant_graph(mode, shape=(2, 3)):
    q1, i1 = _quant("x", "a", 12, 8)
    q2, i2 = _quant("a", "y", 8, 3, rounding=mode)
    return _model([q1, q2], [("x", list(shape))], [("y", list(shape))], i1 + i2)


@pytest.mark.parametrize("mode", sorted(ROUNDING))
def test_intref_integer_rounding_matches_qonnx_for_every_mode(mode):
    from qonnx.core.onnx_exec import execute_onnx

    from l1tagger.export.intref import run_intref

    k = np.arange(-96, 96)  # every residue of 2^5 on both signs: ties at +-16 (mod 32)
    x = (k / 256.0).astype(np.float32).reshape(1, -1)
    m = _two_quant_graph(mode, x.shape)
    want = execute_onnx(_wrapper(m), {"x": x})["y"].astype(np.float64)
    assert np.array_equal(run_intref(m, {"x": x})["y"].value(), want), mode


def test_intref_saturates_huge_and_infinite_inputs_like_qonnx():
    """Issue 12 item 9: +inf and values >= 2^63 used to wrap to the grid minimum in the int64 cast."""
    from qonnx.custom_op.general.quant import quant

    from l1tagger.export.intref import run_intref

    q, inits = _quant("x", "y", 8, 4)
    m = _model([q], [("x", [1, 6])], [("y", [1, 6])], inits)
    x = np.array([[np.inf, 1e18, -1e18, -np.inf, 6e17, -3.0]])
    want = quant(x, np.float64(2.0**-4), np.float64(0), np.float64(8), 1, 0, "ROUND")
    got = run_intref(m, {"x": x})["y"].value()
    assert np.array_equal(got, want), got
    assert got[0, 0] == 127 / 16 and got[0, 2] == -8.0


def test_intref_nan_input_is_a_named_data_error():
    from l1tagger.export.intref import run_intref

    q, inits = _quant("x", "y", 8, 4)
    m = _model([q], [("x", [1, 3])], [("y", [1, 3])], inits)
    with pytest.raises(DataError, match=r"q_y.*'x'.*NaN.*\(0, 1\)"):
        run_intref(m, {"x": np.array([[0.0, np.nan, 1.0]])})


def test_intref_refuses_an_input_of_the_wrong_shape():
    from l1tagger.export.intref import run_intref

    m = _two_quant_graph("ROUND", (1, 6))
    assert run_intref(m, {"x": np.zeros((5, 6))})["y"].v.shape == (5, 6)  # the batch axis is free
    for bad in ((5, 7), (5, 12), (5, 6, 1)):
        with pytest.raises(DataError, match=rf"'x'.*{bad}.*\(B, 6\)"):
            run_intref(m, {"x": np.zeros(bad)})


# ---------------------------------------------------------------------------------------------- converter
def test_converter_folds_half_up_constants_with_qonnx_rounding():
    from qonnx.custom_op.general.quant import quant

    from l1tagger.convert.frontend import build_layer_list

    w = np.array([[-2.5, -1.5, -0.5], [0.5, 1.5, 2.5]], np.float32) / 16  # ties of both signs at frac 4
    qx, ix = _quant("x", "qx", 8, 4)
    qw, iw = _quant("w", "qw", 8, 4, rounding="HALF_UP")
    qy, iy = _quant("mm", "y", 16, 8)
    m = _model([qx, qw, helper.make_node("MatMul", ["qx", "qw"], ["mm"], name="mm"), qy],
               [("x", [1, 2])], [("y", [1, 3])], [("w", w)] + ix + iw + iy)
    fe = build_layer_list(_wrapper(m))
    want = quant(w.astype(np.float64), np.float64(1 / 16), np.float64(0), np.float64(8), 1, 0, "HALF_UP")
    assert np.array_equal(fe.tensors["qw"].value.ravel(), want.ravel())  # the folded weights the CMVM is built from


@pytest.mark.parametrize("mode", sorted(n for n, r in ROUNDING.items() if r.ap_fixed is None))
def test_converter_refuses_a_rounding_ap_fixed_cannot_reproduce(mode):
    from l1tagger.convert.frontend import build_layer_list
    from l1tagger.verify.graphs import attention_block

    with pytest.raises(ConversionError, match=rf"Quant node 'Quant_\d+'.*{mode!r}.*ap_fixed"):
        build_layer_list(attention_block(rounding=mode))


def test_half_up_attention_block_converts_bit_exactly(tmp_path):
    """Issue 13: a HALF_UP attention block used to convert with AP_RND (ties toward +inf) and constants folded by
    floor(v + 0.5); its C simulation differed from the QONNX reference in 3808 of 9000 values. Now HALF_UP maps to
    AP_RND_INF (ties away from zero, as qonnx) and the C simulation is bit-exact, negative ties included."""
    import torch

    from l1tagger.convert import convert
    from l1tagger.export.reference import run_reference
    from l1tagger.verify.csim import run_csim
    from l1tagger.verify.graphs import attention_block, random_inputs, save

    torch.set_num_threads(1)
    n, c, c_out, n_jets = 6, 4, 5, 300
    model = attention_block(n=n, c=c, heads=2, d_head=3, c_out=c_out, topk=3, rounding="HALF_UP")
    save(model, tmp_path / "block.onnx")
    inputs = random_inputs(n_jets, n, c)
    # the test data holds negative ties at HALF_UP quantizers: at the input, and inside (e.g. a projection)
    x16 = inputs["x"].astype(np.float64) * 16
    assert ((x16 - np.floor(x16) == 0.5) & (x16 < 0)).sum() > 100
    ref = run_reference(model, inputs, return_all=True)
    inner = [n for n in model.graph.node if n.op_type == "Quant" and n.input[0] in ref and n.input[0] != "x"
             and model.get_initializer(n.input[0]) is None]
    neg_ties = 0
    for q in inner:
        frac = -int(np.log2(float(model.get_initializer(q.input[1]))))
        v = np.asarray(ref[q.input[0]], np.float64) * 2.0**frac
        neg_ties += int(((v - np.floor(v) == 0.5) & (v < 0)).sum())
    assert neg_ties > 0
    hls = convert(tmp_path / "block.onnx", tmp_path / "prj", tb_inputs=inputs, n_tb=n_jets)
    mids = [layer.get_attr("l1")["types"]["mid_t"] for layer in hls.get_layers() if layer.class_name == "L1Quant"]
    assert mids and all("AP_RND_INF" in t or "AP_RND" not in t for t in mids)
    res = run_csim(tmp_path / "prj")
    assert res.n_output_values == n_jets * n * c_out
    assert res.mismatching_values == 0, res.first_mismatch
    assert res.bit_exact


# ---------------------------------------------------------------------------------------------- da4ml lowering
def test_rtl_input_port_encodes_with_the_input_quant_rounding():
    """The RTL input port used to apply FLOOR whatever the input Quant's rounding_mode."""
    from l1tagger.export.reference import run_reference
    from l1tagger.rtl.lower import lower_model

    q, inits = _quant("x", "qx", 8, 2, rounding="ROUND")
    m = _wrapper(_model([q, helper.make_node("Relu", ["qx"], ["y"], name="relu")], [("x", [1, 6])],
                        [("y", [1, 6])], inits))
    lm = lower_model(m)
    assert lm.inputs[0].rounding == "ROUND"
    x = np.array([[0.2, 0.375, 0.625, 1.1, 2.3, 0.125]], np.float32)
    y = lm.decode_outputs(lm.comb.predict(lm.encode_inputs({"x": x}), n_threads=1))["y"]
    assert np.array_equal(y, run_reference(m, {"x": x})["y"])


def test_rtl_folds_constant_elements_with_the_node_rounding():
    """A traced tensor with a constant element: that element used to be floored whatever the rounding_mode."""
    from l1tagger.export.reference import run_reference
    from l1tagger.rtl.lower import lower_model

    q1, i1 = _quant("x", "qx", 8, 2, rounding="FLOOR")
    q2, i2 = _quant("sum", "y", 8, 2, rounding="ROUND")
    nodes = [q1, helper.make_node("Mul", ["qx", "sel"], ["m"], name="sel"),
             helper.make_node("Add", ["m", "off"], ["sum"], name="off"), q2]
    m = _wrapper(_model(nodes, [("x", [1, 2])], [("y", [1, 2])],
                        [("sel", np.array([0, 1], np.float32)), ("off", np.array([0.875, 0], np.float32))]
                        + i1 + i2))
    lm = lower_model(m)
    x = np.array([[0.5, 1.25], [-1.0, 0.75]], np.float32)
    y = lm.decode_outputs(lm.comb.predict(lm.encode_inputs({"x": x}), n_threads=1))["y"]
    ref = run_reference(m, {"x": x})["y"]
    assert ref[0, 0] == 1.0  # 0.875 = 3.5 LSB -> half-even 4 LSB (floor gave 0.75)
    assert np.array_equal(y, ref)
