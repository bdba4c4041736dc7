"""The da4ml lowering: bit-exact against the QONNX reference (da4ml's interpreter), clear failures."""

from pathlib import Path

import numpy as np
import pytest
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper

from l1tagger.errors import ConfigError, ConversionError

from l1tagger.rtl.examples import random_feed, tiny_attention


@pytest.mark.parametrize("topk", [0, 2])
def test_lowering_is_bit_exact_on_500_jets(topk):
    from l1tagger.export.reference import run_reference
    from l1tagger.rtl.lower import lower_model

    m = tiny_attention(topk=topk)
    lm = lower_model(m)
    feed = random_feed(500)
    ref = run_reference(m, feed)["logits"]
    y = lm.decode_outputs(lm.comb.predict(lm.encode_inputs(feed), n_threads=1))["logits"]
    assert np.abs(ref).max() > 0  # a non-trivial model
    assert np.array_equal(y, ref), f"{int((y != ref).sum())} of {y.size} values differ"


def test_unsupported_node_is_named():
    from l1tagger.rtl.lower import lower_model

    m = tiny_attention()
    relu = next(n for n in m.graph.node if n.op_type == "Relu")
    relu.op_type = "Sigmoid"
    with pytest.raises(ConversionError, match=rf"{relu.name}.*Sigmoid"):
        lower_model(m)


def test_half_even_rounding_fails_with_explanation():
    from l1tagger.rtl.lower import lower_model

    with pytest.raises(ConfigError, match="da4ml rounds only by truncation"):
        lower_model(tiny_attention(rounding="ROUND"))


def test_idempotent_half_even_quant_is_accepted():
    """The ROUND Quant after the softmax (and on weights) never rounds, so it lowers."""
    from l1tagger.rtl.lower import lower_model

    m = tiny_attention()
    assert any(n.op_type == "Quant" and helper.get_attribute_value(
        next(a for a in n.attribute if a.name == "rounding_mode")) == b"ROUND" for n in m.graph.node)
    lower_model(m)


def test_mask_port_rejects_non_binary_values():
    from l1tagger.rtl.lower import lower_model

    lm = lower_model(tiny_attention())
    feed = random_feed(3)
    feed["mask"][0, 0] = 0.5
    with pytest.raises(ConversionError, match="mask"):
        lm.encode_inputs(feed)


def test_input_encoding_saturates_like_qonnx():
    from l1tagger.rtl.lower import lower_model

    lm = lower_model(tiny_attention())
    port = next(p for p in lm.inputs if p.name == "x")
    enc = port.encode(np.full((1, 4, 3), 100.0))
    assert enc.max() == (2 ** (port.bits - 1) - 1) * 2.0**-port.frac


@pytest.mark.parametrize("topk", [0, 3])
@pytest.mark.parametrize("in_int_bits", [0, 3])
def test_softmax_matches_integer_reference(topk, in_int_bits):
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    from l1tagger.qat.softmax import SoftmaxSpec, softmax_int
    from l1tagger.rtl.softmax import firmware_softmax

    spec = SoftmaxSpec.default_for(8, 4, 8, out_bits=8, rounding="floor")
    n = 8
    x, m = FixedVariableArrayInput((1, n)), FixedVariableArrayInput((1, n))
    o = firmware_softmax(x.quantize(1, in_int_bits, 4), m.quantize(0, 1, 0), spec, topk)
    comb = comb_trace(list(np.concatenate([x._vars.ravel(), m._vars.ravel()])), list(o._vars.ravel()),
                      keep_dead_inputs=True)
    rng = np.random.default_rng(topk + in_int_bits)
    q = rng.integers(-(2 ** (in_int_bits + 4)), 2 ** (in_int_bits + 4), (1000, n))
    q[:50, 1] = q[:50, 0]  # ties
    mask = (rng.random((1000, n)) < 0.7).astype(int)
    mask[:20] = 0  # every key dropped -> all zero
    y = comb.predict(np.concatenate([q / 16, mask], 1), n_threads=1) * 2.0**spec.out_frac
    assert np.array_equal(y, softmax_int(q, mask, topk, spec))


def test_half_even_softmax_spec_is_rejected():
    from l1tagger.qat.softmax import SoftmaxSpec
    from l1tagger.rtl.softmax import check_spec_rounding

    spec = SoftmaxSpec.default_for(8, 4, 8, out_bits=8, rounding="half_even")
    with pytest.raises(ConfigError, match="truncation"):
        check_spec_rounding(spec, "sm0")


@pytest.mark.parametrize("attention", ["full", "linformer", "topk"])
def test_exported_tagger_lowering_is_bit_exact_on_1000_jets(attention, tmp_path):
    """A real exported tiny tagger per attention kind, through da4ml's C++ interpreter of the traced logic (the same
    integer semantics as the Verilog, without Verilator). Regression for two da4ml pitfalls found on these graphs:
    decimal rounding of tiny scale factors (Linformer: 258 of 3000 logits off by one LSB) and constants outside
    da4ml's 2^+-32 range in the softmax's masked max (full: 4 of 3000)."""
    import torch

    from l1tagger.export.examples import example_model, tiny_config, toy_inputs
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.export.reference import run_reference
    from l1tagger.qat.recipe import load_recipe
    from l1tagger.rtl.lower import lower_model

    torch.set_num_threads(1)
    cfg = tiny_config(attention)
    inputs = toy_inputs(cfg, 1000)
    recipe = load_recipe(Path(__file__).parents[1] / "quantize" / "int8_floor.yaml")
    _, qmodel, _ = example_model(attention, recipe, inputs)
    feed = {k: inputs[k] for k in ("x", "mask", "pair")}
    export_qonnx_model(qmodel, tuple(torch.as_tensor(feed[k][:1]) for k in ("x", "mask", "pair")),
                       tmp_path / "m.onnx")
    lm = lower_model(tmp_path / "m.onnx")
    ref = run_reference(ModelWrapper(str(tmp_path / "m.onnx")), feed)["logits"].reshape(1000, -1)
    y = lm.decode_outputs(lm.comb.predict(lm.encode_inputs(feed), n_threads=1))["logits"].reshape(1000, -1)
    assert np.abs(ref).max() > 0
    assert np.array_equal(y, ref), f"{int((y != ref).sum())} of {y.size} logits differ"


def test_tracing_runs_in_an_exact_decimal_context():
    import decimal

    from l1tagger.rtl.traced import exact_decimal

    with exact_decimal():
        assert decimal.Decimal(2) ** -89 * decimal.Decimal(2) ** 89 == 1  # 63 significant digits, exact
        with pytest.raises(decimal.Inexact):
            decimal.Decimal(1) / decimal.Decimal(3)
    decimal.Decimal(1) / decimal.Decimal(3)  # the caller's context is untouched


def test_constant_outside_da4ml_range_is_rejected():
    """A value whose scale factor drifted to 2^-60 multiplexed against the constant 1.0: in that hardware domain the
    constant is 2^60, which da4ml 0.6.0 cannot hold (its C++ interpreter returns 0 here, not 1)."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    from l1tagger.rtl.lower import check_constants
    from l1tagger.rtl.traced import HWCONF, exact_decimal, select

    with exact_decimal():
        x = FixedVariableArrayInput((3,), hwconf=HWCONF)
        drifted = x[0].quantize(1, 3, 4) * 2.0**-60 + x[1].quantize(1, 3, 4)
        normal = x[1].quantize(1, 3, 4)
        bit = x[2].quantize(0, 1, 0)
        bad = comb_trace(list(x._vars), [select(bit, drifted, 1.0)])
        good = comb_trace(list(x._vars), [select(bit, normal, 1.0)])
    with pytest.raises(ConversionError, match="constant .* hardware domain"):
        check_constants(bad)
    check_constants(good)


def _quant_chain(in_scale: float, in_bits: int, in_signed: int, out_scale: float, out_bits: int,
                 rounding: str) -> ModelWrapper:
    """x (1, 16) -> Quant(in_scale, in_bits, in_signed, FLOOR) -> Quant(out_scale, out_bits, signed, rounding) -> y."""
    from onnx import TensorProto, numpy_helper

    def q(name, src, dst, scale, bits, mode, signed=1):
        inits = [numpy_helper.from_array(np.array(v, np.float32), f"{name}_{k}")
                 for k, v in (("scale", scale), ("zp", 0.0), ("bits", float(bits)))]
        node = helper.make_node("Quant", [src] + [i.name for i in inits], [dst], name=name,
                                domain="qonnx.custom_op.general", signed=signed, narrow=0, rounding_mode=mode)
        return node, inits

    n1, i1 = q("Quant_in", "x", "t", in_scale, in_bits, "FLOOR", in_signed)
    n2, i2 = q("Quant_out", "t", "y", out_scale, out_bits, rounding)
    g = helper.make_graph([n1, n2], "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])], i1 + i2)
    return ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))


@pytest.mark.parametrize("in_signed, out_scale, rounding, expect_min, expect_max", [
    (1, 0.5, "FLOOR", -0.5, 0.0),  # signed inputs -8/128 .. 7/128: negative ones floor to -0.5
    (0, 0.125, "HALF_UP", 0.0, 0.125),  # unsigned 0 .. 15/128: >= 8/128 rounds up to 0.125 (2^-3 > the range)
])
def test_rounding_to_a_grid_coarser_than_the_whole_input_range(in_signed, out_scale, rounding, expect_min,
                                                                 expect_max):
    """Found on a pruned HGQ Linformer (benchmarks, 80k EBOPs): a Quant to the grid 0.5 of an input whose values all
    lie within (-0.0625, 0.0625). floor(-0.03125 / 0.5) * 0.5 = -0.5 needs more integer bits than the input has;
    the lowering kept the input's integer bits (+1) and the result wrapped to 0 in 400 of 3200 values."""
    from l1tagger.export.reference import run_reference
    from l1tagger.rtl.lower import lower_model

    m = _quant_chain(2.0**-7, 4, in_signed, out_scale, 3, rounding)
    x = (np.arange(16, dtype=np.float32) - 8 * in_signed)[None] / 128
    feed = {"x": np.repeat(x, 2, axis=0)}
    ref = run_reference(m, feed)["y"]
    lm = lower_model(m)
    y = lm.decode_outputs(lm.comb.predict(lm.encode_inputs(feed), n_threads=1))["y"]
    assert (ref.min(), ref.max()) == (expect_min, expect_max)  # the case: rounding leaves the input's range
    assert np.array_equal(y, ref), f"rtl {y[0].tolist()} vs reference {ref[0].tolist()}"


def test_pair_table_bin_index_of_a_feature_narrower_than_one_bin():
    """The pair-table index floors a feature to its bin grid 2^e first: a feature whose whole range is inside one
    bin (|x| < 0.5, bins of width 4) floors negative values to -4, which must not wrap to 0."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    from l1tagger.rtl.lower import _bin_index
    from l1tagger.rtl.traced import HWCONF, exact_decimal

    xs = np.arange(-8, 8, dtype=np.float64) / 16  # -0.5 .. 0.4375 on the grid 2^-4
    with exact_decimal():
        x = FixedVariableArrayInput((1,), hwconf=HWCONF)
        v = x.quantize(1, -1, 4, "WRAP", "TRN")._vars[0]
        comb = comb_trace([x._vars[0]], [_bin_index(v, -4.0, 2)])
    y = comb.predict(xs[:, None], n_threads=1).ravel()
    assert y.tolist() == (np.floor((xs + 4.0) / 4.0)).tolist()  # 0 for negative x, 1 for x >= 0
