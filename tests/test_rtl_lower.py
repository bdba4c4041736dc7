"""The da4ml lowering: bit-exact against the QONNX reference (da4ml's interpreter), clear failures."""

import numpy as np
import pytest
from onnx import helper

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
