"""The resource/latency estimator on small QONNX graphs built with onnx.helper (numbers checked by hand)."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from l1tagger.errors import ConfigError, ConversionError
from l1tagger.qat.softmax import ONNX_DOMAIN
from l1tagger.report.estimates import MappingRules, estimate_graph

QD = "qonnx.custom_op.general"
SPEC = {"in_bits": 8, "in_frac": 2, "exp_table_bits": 8, "exp_shift": 0, "exp_frac": 8, "inv_table_bits": 8,
        "inv_shift": 4, "inv_frac": 8, "inv_bits": 10, "out_bits": 8, "out_frac": 7, "rounding": "floor"}


class G:
    """Tiny QONNX graph builder: every tensor quantized by a Quant node (power-of-two scale, zero point 0)."""

    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    def quant(self, x, bits, frac=0, signed=1):
        self.n += 1
        s = self.const(f"s{self.n}", 2.0 ** -frac)
        z = self.const(f"z{self.n}", 0.0)
        b = self.const(f"b{self.n}", float(bits))
        out = f"q{self.n}"
        self.nodes.append(helper.make_node("Quant", [x, s, z, b], [out], name=f"Quant_{self.n}", domain=QD,
                                           signed=signed, narrow=0, rounding_mode="ROUND"))
        return out

    def op(self, op, ins, name, domain="", **attrs):
        self.nodes.append(helper.make_node(op, ins, [name], name=name, domain=domain, **attrs))
        return name

    def model(self, inputs, output, out_shape):
        g = helper.make_graph(self.nodes, "g", inputs,
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)], self.inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QD, 1)])


def attention_graph(N=8, F=4, D=16, w_bits=6, a_bits=8, zero_cols=0, topk=0):
    g = G()
    x = g.quant("x", a_bits, 4)
    W = np.arange(F * D, dtype=np.float32).reshape(F, D) % 7 - 3
    W[:, :zero_cols] = 0
    wq = g.quant(g.const("W", W), w_bits, 0)
    h = g.quant(g.op("MatMul", [x, wq], "dense"), a_bits, 2)
    h = g.quant(g.op("Relu", [h], "relu"), a_bits, 2, signed=0)
    ht = g.op("Transpose", [h], "ht", perm=[0, 2, 1])
    s = g.quant(g.op("MatMul", [h, ht], "qk"), 8, 2)
    m = g.quant("mask", 1, 0, signed=0)
    mk = g.op("Unsqueeze", [m, g.const("ax", np.array([1], np.int64))], "mk")
    w = g.op("FirmwareSoftmax", [s, mk], "softmax", domain=ONNX_DOMAIN, spec=json.dumps(SPEC), topk=topk)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", N, F]),
              helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["B", N])]
    return g.model(inputs, w, ["B", N, N])


def fix_int64(model):
    for init in model.graph.initializer:
        if init.name == "ax":
            init.CopyFrom(numpy_helper.from_array(np.array([1], np.int64), "ax"))
    return model


def test_dense_counts_and_ebops_by_hand():
    N, F, D = 8, 4, 16
    m = fix_int64(attention_graph(N, F, D))
    est = estimate_graph(m, clock_mhz=360)
    assert est["source"] == "estimate" and est["rules"]
    layers = {l["name"]: l for l in est["layers"]}
    W = np.arange(F * D).reshape(F, D) % 7 - 3
    nnz = int(np.count_nonzero(W))
    assert layers["dense"]["products"] == N * nnz
    # EBOPs from the bits each constant really uses (not the 6-bit container); LUTs of shift-and-add: per output
    # column, (nonzero CSD digits - 1) adders of the 8-bit input, for each of the N rows
    from l1tagger.contract.quant import constant_bits, csd_digits

    assert layers["dense"]["ebops"] == N * 8 * int(constant_bits(W).sum())
    adders = int(np.maximum(csd_digits(W).sum(axis=0) - 1, 0).sum())
    assert layers["dense"]["lut"] == N * 8 * adders
    assert layers["dense"]["dsp"] == 0
    # QK^T: 8-bit x 8-bit activations, K = D -> products N*N*D, below the DSP threshold (both > 8 needed)
    assert layers["qk"]["products"] == N * N * D
    assert layers["qk"]["dsp"] == 0 and layers["qk"]["ebops"] == N * N * D * 64


def test_zero_weights_cost_nothing():
    full = estimate_graph(fix_int64(attention_graph(zero_cols=0)))
    pruned = estimate_graph(fix_int64(attention_graph(zero_cols=8)))
    d0 = {l["name"]: l for l in full["layers"]}["dense"]
    d1 = {l["name"]: l for l in pruned["layers"]}["dense"]
    assert d1["products"] < d0["products"] and d1["ebops"] < d0["ebops"]


def test_wide_activation_products_go_to_dsp():
    m = fix_int64(attention_graph(a_bits=12))
    layers = {l["name"]: l for l in estimate_graph(m)["layers"]}
    N, D = 8, 16
    assert layers["qk"]["dsp"] == N * N * D  # 12x12 fits one 27x18 DSP48E2
    strict = estimate_graph(m, rules=MappingRules(var_dsp_min_width=16))
    assert {l["name"]: l for l in strict["layers"]}["qk"]["dsp"] == 0


def test_softmax_tables_and_topk_cost():
    N = 8
    base = {l["name"]: l for l in estimate_graph(fix_int64(attention_graph(N)))["layers"]}["softmax"]
    topk = {l["name"]: l for l in estimate_graph(fix_int64(attention_graph(N, topk=2)))["layers"]}["softmax"]
    assert base["products"] == N * N  # one e*r product per weight
    assert base["bram18"] == 0  # 256 x 9 bits = 2304 bits <= 4096 -> LUT ROM
    assert topk["lut"] > base["lut"] and topk["cycles"] > base["cycles"]
    # a bigger table goes to BRAM: 1024 entries x 9 bits
    spec = dict(SPEC, exp_table_bits=10, in_bits=10)
    m = fix_int64(attention_graph(N))
    for node in m.graph.node:
        if node.op_type == "FirmwareSoftmax":
            node.attribute[0].s = json.dumps(spec).encode()
    big = {l["name"]: l for l in estimate_graph(m)["layers"]}["softmax"]
    assert big["bram18"] == np.ceil(N * N / 2) * 1  # 9216 bits fit one BRAM18, one copy per 2 reads


def test_latency_is_critical_path_and_clock_dependent():
    m = fix_int64(attention_graph())
    fast = estimate_graph(m, clock_mhz=360)["total"]
    slow = estimate_graph(m, clock_mhz=120)["total"]
    assert fast["latency_cycles"] >= slow["latency_cycles"] > 0  # fewer adder levels fit a 2.78 ns cycle
    assert fast["ii_cycles"] == 1
    assert fast["latency_ns"] == pytest.approx(fast["latency_cycles"] * 1e3 / 360)
    rf = estimate_graph(m, rules=MappingRules(reuse_factor=4))["total"]
    assert rf["ii_cycles"] == 4 and rf["latency_cycles"] > fast["latency_cycles"]


def test_unknown_op_is_named():
    g = G()
    x = g.quant("x", 8, 4)
    y = g.op("Sigmoid", [x], "bad_sigmoid")
    m = g.model([helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4])], y, ["B", 4])
    with pytest.raises(ConversionError, match="bad_sigmoid"):
        estimate_graph(m)


def test_unquantized_operand_is_an_error():
    g = G()
    w = g.quant(g.const("W", np.ones((4, 4))), 4)
    y = g.op("MatMul", ["x", w], "mm_noquant")
    m = g.model([helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4])], y, ["B", 4])
    with pytest.raises(ConversionError, match="mm_noquant"):
        estimate_graph(m)


def test_model_file_round_trip(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(fix_int64(attention_graph()), str(path))
    assert estimate_graph(path)["total"]["ebops"] == estimate_graph(fix_int64(attention_graph()))["total"]["ebops"]


@pytest.mark.slow
@pytest.mark.parametrize("attention", ["full", "linformer", "topk"])
def test_real_exported_models(tmp_path, attention):
    """The estimator on the exporter's tiny taggers (l1tagger.export.examples): every layer is understood, and a
    narrower recipe costs fewer EBOPs."""
    import torch

    from l1tagger.export.examples import example_model, tiny_config, toy_inputs
    from l1tagger.export.export import export_qonnx_model

    torch.set_num_threads(1)
    totals = {}
    for recipe in ("quantize/int8.yaml", "quantize/int4.yaml"):
        cfg = tiny_config(attention)
        inputs = toy_inputs(cfg, 256)
        _, q, _ = example_model(attention, recipe, inputs)
        ex = tuple(torch.as_tensor(inputs[k][:1]) for k in ("x", "mask", "pair") if k in inputs)
        w = export_qonnx_model(q, ex, tmp_path / f"{attention}.onnx")
        est = estimate_graph(w.model)
        ops = {l["op"] for l in est["layers"]}
        assert {"MatMul", "FirmwareSoftmax"} <= ops
        totals[recipe] = est["total"]
    assert totals["quantize/int4.yaml"]["ebops"] < totals["quantize/int8.yaml"]["ebops"]
    assert totals["quantize/int8.yaml"]["latency_cycles"] > 0


def test_off_chip_pair_features_are_named_not_costed_and_u_is_its_own_block(tmp_path):
    """A graph with the pair features as inputs (model.inputs: features) says they are off chip; no hypothetical
    on-chip line is added to the layers, and the U path is a block of the totals."""
    import torch

    from l1tagger.export.examples import example_model, tiny_config, toy_inputs
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.report.blocks import interaction_share

    inputs = toy_inputs(tiny_config("full"), 16)
    _, q, _ = example_model("full", "quantize/int8.yaml", inputs)
    ex = tuple(torch.as_tensor(inputs[k][:1]) for k in ("x", "mask", "pair") if k in inputs)
    est = estimate_graph(export_qonnx_model(q, ex, tmp_path / "full.onnx").model)
    assert est["pair_features"].startswith("off chip")
    assert not any(layer["op"] == "PairFeatures" for layer in est["layers"]) and "pair_features_on_chip" not in est
    b = est["blocks"]
    assert b["interaction U"]["lut"] > 0 and b["pair features"]["lut"] == 0 and b["softmax"]["lut"] > 0
    assert sum(v["lut"] for v in b.values()) == pytest.approx(est["total"]["lut"])
    assert 0 < interaction_share(b) < 1
