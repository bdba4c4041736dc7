"""A layer trained to 0 bits everywhere leaves a constant behind: a pruned query projection makes the attention
logits a constant. Found in bench_hgq (N = 16 full attention and top-k at an 80k EBOPs target): the converter laid
the constant logits out on their own narrowest type and then refused them as not on the softmax's logit grid. Now
they are laid out on that grid; C simulation and the RTL route stay bit-exact."""

import numpy as np
import pytest
from onnx import numpy_helper

from l1tagger.rtl.examples import random_feed, tiny_attention


def _pruned_query(topk: int):
    m = tiny_attention(topk=topk)
    prod = {o: n for n in m.graph.node for o in n.output}
    src = [n for n in m.graph.node if n.op_type == "MatMul"][1].input[1]  # the query projection's weight
    while src in prod:
        src = prod[src].input[0]
    for init in m.graph.initializer:
        if init.name == src:
            init.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(init)), src))
    return m


def test_constant_logits_convert_and_csim_bit_exact(tmp_path):
    from l1tagger.convert import convert
    from l1tagger.verify.csim import run_csim
    from l1tagger.verify.graphs import save

    save(_pruned_query(0), tmp_path / "m.onnx")
    convert(tmp_path / "m.onnx", tmp_path / "prj", tb_inputs=random_feed(300), n_tb=300)
    r = run_csim(tmp_path / "prj")
    assert r.n_jets == 300 and r.bit_exact, r.first_mismatch


@pytest.mark.parametrize("topk", [0, 2])
def test_constant_logits_rtl_bit_exact(topk):
    from l1tagger.export.reference import run_reference
    from l1tagger.rtl.lower import lower_model

    m = _pruned_query(topk)
    feed = random_feed(300)
    ref = run_reference(m, feed)["logits"]
    lm = lower_model(m)
    y = lm.decode_outputs(lm.comb.predict(lm.encode_inputs(feed), n_threads=1))["logits"]
    assert np.array_equal(y, ref)
