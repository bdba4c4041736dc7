"""Regression tests for the 8 pitfalls measured in stock hls4ml 1.3 (issue 5), on a tiny attention block
(l1tagger.verify.graphs.attention_block: N=6 particles, C=4 features, 2 heads, d=3, top-k 3) compiled ONCE per
session with g++ and C-simulated on 1000 off-grid jets against the QONNX reference, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

N, C, H, D, C_OUT = 6, 4, 2, 3, 5


@pytest.fixture(scope="session")
def block(tmp_path_factory):
    import torch

    from l1tagger.convert import convert
    from l1tagger.verify.graphs import attention_block, random_inputs, save

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("block")
    model = attention_block(n=N, c=C, heads=H, d_head=D, c_out=C_OUT, topk=3)
    save(model, d / "block.onnx")
    hls_model = convert(d / "block.onnx", d / "prj", tb_inputs=random_inputs(1000, N, C), n_tb=1000)
    return {"dir": d / "prj", "hls": hls_model}


@pytest.fixture(scope="session")
def csim(block):
    from l1tagger.verify.csim import run_csim

    return run_csim(block["dir"])


def _layers(hls_model, cls):
    return [layer for layer in hls_model.get_layers() if layer.class_name == cls]


def _fe(block):
    from l1tagger.convert import load_graph
    from l1tagger.convert.frontend import build_layer_list

    return build_layer_list(load_graph(block["dir"] / "model.onnx"), fuse_topk=False)  # the N-wide softmax layer


def test_csim_bit_exact_1000_jets(csim):
    assert csim.n_jets == 1000
    assert csim.n_output_values == 1000 * N * C_OUT
    assert csim.mismatching_values == 0, csim.first_mismatch
    assert csim.layers_compared >= 25  # every traced layer compared with the reference tensor
    assert csim.bit_exact and csim.first_mismatch is None


def test_pitfall1_per_particle_linear_keeps_particle_axis(block, csim):
    # stock MatMulConstToDense took n_in = N*C; ours contracts over C only, once per particle
    mm = _layers(block["hls"], "L1ConstMatMul")  # constant weights: shift-and-add, one CMVM per particle
    first = mm[0].get_attr("l1")["consts"]
    assert (first["n_rows"], first["n_k"], first["n_p"]) == (N, C, H * D)
    assert list(mm[0].get_output_variable().shape) == [N, H * D]
    assert csim.layer_mismatches.get(mm[0].name, 0) == 0


def test_pitfall2_bias_and_weight_quantizers_kept(block):
    fe = _fe(block)
    consts = {layer["name"]: layer for layer in fe.layers if layer["class_name"] == "L1Const"}
    adds = [layer for layer in fe.layers if layer["class_name"] == "L1Add"]
    assert len(adds) == 4  # q, k, v, output projection biases: none dropped
    for add in adds:
        bias = [consts[i] for i in add["inputs"] if i in consts]
        assert len(bias) == 1
        vals = np.array(bias[0]["l1"]["tables"]["value"][1])
        assert np.any(vals != 0)
        assert np.array_equal(vals * 2**5, np.round(vals * 2**5))  # on the bias Quant grid (frac 5)
    from l1tagger.convert.frontend import Const

    w = [t.value for t in fe.tensors.values() if isinstance(t, Const) and t.value.shape == (C, H * D)]
    assert np.abs(w[0] * 2**6).max() <= 127  # narrow 8-bit weight Quant applied (folded into the shift-and-add)


def test_pitfall3_bias_broadcast_over_particles_not_full_shape(block, csim):
    fe = _fe(block)
    add = next(layer for layer in fe.layers if layer["class_name"] == "L1Add")
    b_idx = np.asarray(add["l1"]["tables"]["b_idx"][1]).reshape(N, H * D)
    assert (b_idx == np.arange(H * D)[None, :]).all()  # bias index = channel, same for every particle (N != C)
    assert csim.layer_mismatches.get(add["name"], 0) == 0


def test_pitfall4_act_x_act_matmul_emits_a_call(block, csim):
    from l1tagger.convert import check_every_layer_emits
    from l1tagger.errors import ConversionError

    mm = _layers(block["hls"], "L1MatMul")
    act_act = [m for m in mm if all(block["hls"].graph[i].class_name != "L1Const" for i in m.inputs)]
    assert len(act_act) == 1  # Q K^T; A V of the top-3 softmax is the fused L1TopkAttention layer
    fused = _layers(block["hls"], "L1TopkAttention")
    assert len(fused) == 1 and "l1t::topk_attention<" in fused[0].get_attr("function_cpp")
    for m in act_act + fused:
        assert csim.layer_mismatches.get(m.name, 0) == 0
    assert "l1t::matmul<" in act_act[0].get_attr("function_cpp")
    code = (block["dir"] / "firmware" / "myproject.cpp").read_text()
    for layer in block["hls"].get_layers():
        if layer.class_name not in ("InputLayer", "Input"):
            assert layer.get_attr("function_cpp") in code
    # the guard itself: a layer without a C++ call is refused
    victim = act_act[0]
    saved = victim.get_attr("function_cpp")
    victim.attributes.pop("function_cpp")
    try:
        with pytest.raises(ConversionError, match=victim.name):
            check_every_layer_emits(block["hls"])
    finally:
        victim.set_attr("function_cpp", saved)


def test_pitfall5_softmax_per_row_with_spec_tables(block, csim):
    from l1tagger.qat.softmax import SoftmaxSpec

    sm = _layers(block["hls"], "L1TopkAttention")  # the top-3 softmax, fused with its A V product
    assert len(sm) == 1 and not _layers(block["hls"], "L1Softmax")
    cfg = sm[0].get_attr("l1")
    c = cfg["consts"]
    assert (c["n_batch"] * c["n_m"], c["n_cols"], c["topk"]) == (H * N, N, 3)
    spec = SoftmaxSpec.default_for(8, 3, N, 8, "half_even")
    assert list(cfg["tables"]["exp_table"][1]) == list(spec.exp_table())
    assert list(cfg["tables"]["inv_table"][1]) == list(spec.inv_table())
    params = (block["dir"] / "firmware" / "parameters.h").read_text()
    assert ", ".join(str(int(v)) for v in spec.exp_table()) in params
    header = (block["dir"] / "firmware" / "nnet_utils" / "nnet_l1tagger.h").read_text()
    assert "exp(" not in header.replace("exp_", "")  # no run-time exponential
    assert csim.layer_mismatches.get(sm[0].name, 0) == 0


def test_pitfall6_exact_accumulator_widths(block):
    from l1tagger.convert.fixed import clog2

    fe = _fe(block)
    by_name = {layer["name"]: layer for layer in fe.layers}
    for layer in fe.layers:
        if layer["class_name"] != "L1MatMul":
            continue
        a, b = (by_name[i]["l1"]["type"] if "l1" in by_name[i] else None for i in layer["inputs"])
        t = layer["l1"]["type"]
        k = layer["l1"]["consts"]["n_k"]
        assert t.frac == a.frac + b.frac  # no truncation
        assert t.width <= a.width + b.width + clog2(k)  # no wider than the textbook bound
        acc = layer["l1"]["types"]["accum_t"]
        assert acc == f"ap_fixed<{t.width},{t.width - t.frac}>"  # full precision, wraps never, no rounding
    quants = [layer for layer in fe.layers if layer["class_name"] == "L1Quant"]
    assert all("AP_RND_CONV" in q["l1"]["types"]["mid_t"] for q in quants)  # ROUND = half even
    assert all(q["l1"]["sat"] in ("SAT", "SAT_SYM") for q in quants)


def test_pitfall7_input_precision_is_the_quant_grid(block):
    from hls4ml.model.types import RoundingMode, SaturationMode

    x = block["hls"].graph["x"].get_output_variable().type.precision
    assert (x.width, x.integer, x.signed) == (8, 4, True)
    assert x.rounding_mode == RoundingMode.RND_CONV and x.saturation_mode == SaturationMode.SAT
    m = block["hls"].graph["mask"].get_output_variable().type.precision
    assert (m.width, m.signed) == (1, False)


def test_pitfall8_no_reliance_on_bit_exact_flag(block, csim):
    import inspect

    import l1tagger.convert as conv
    import l1tagger.convert.frontend as fe_mod

    src = inspect.getsource(conv) + inspect.getsource(fe_mod)
    assert "convert_from_onnx_model(" not in src.replace("`convert_from_onnx_model(..., bit_exact=True)`", "")
    assert "bit_exact" not in str(block["hls"].config.config.get("HLSConfig", {}))
    assert csim.bit_exact  # exactness comes from the types we derive, verified by C simulation


def test_first_mismatching_layer_is_named(block, csim):
    """compare_trace names the first layer (graph order) whose values differ."""
    from l1tagger.export.reference import run_reference
    from l1tagger.verify.csim import compare_trace, load_tb

    fe = _fe(block)
    inputs, _ = load_tb(block["dir"], 20)
    from l1tagger.convert import load_graph

    model = load_graph(block["dir"] / "model.onnx")
    ref_all = run_reference(model, inputs, return_all=True)
    trace = {}
    for layer in fe.layers:
        t = {v: k for k, v in fe.layer_of_tensor.items()}.get(layer["name"])
        if t in ref_all:
            trace[layer["name"]] = np.asarray(ref_all[t], np.float64).copy()
    counts, first, _ = compare_trace(fe, trace, ref_all, 20)
    assert first is None and not any(counts.values())
    sm = next(layer["name"] for layer in fe.layers if layer["class_name"] == "L1Softmax")
    trace[sm] = trace[sm].copy()
    trace[sm].reshape(20, -1)[7, 3] += 2.0**-8
    later = [layer["name"] for layer in fe.layers if layer["class_name"] == "L1Quant"][-1]
    trace[later] = trace[later] + 1.0
    counts, first, _ = compare_trace(fe, trace, ref_all, 20)
    assert first["layer"] == sm and first["first_jet"] == 7 and first["n_values"] == 1


def test_attention_weights_from_trace_layout(block):
    """group_attention returns (n_jets, H, N, N) firmware weights; rows of real particles sum to ~1."""
    from l1tagger.convert import load_graph
    from l1tagger.export.reference import run_reference
    from l1tagger.verify.attention import group_attention
    from l1tagger.verify.csim import load_tb

    fe = _fe(block)
    inputs, _ = load_tb(block["dir"], 30)
    ref_all = run_reference(load_graph(block["dir"] / "model.onnx"), inputs, return_all=True)
    tensor_of = {v: k for k, v in fe.layer_of_tensor.items()}
    trace = {s["layer"]: ref_all[tensor_of[s["layer"]]] for s in fe.softmax_layers}
    layers = group_attention(trace, fe.softmax_layers, n_heads=H, n_jets=30)
    assert len(layers) == 1
    w = layers[0]["weights"]
    assert w.shape == (30, H, N, N)
    m = inputs["mask"].astype(bool)
    assert np.all(w[~np.broadcast_to(m[:, None, None, :], w.shape)] == 0)  # padded keys get exactly 0
    assert np.all((w > 0).sum(-1)[np.broadcast_to(m[:, None, :], w.shape[:3])] <= 3)  # top-3
    sums = w.sum(-1)[np.broadcast_to(m[:, None, :], w.shape[:3])]
    assert np.all(np.abs(sums - 1) < 0.05)
