"""Cost from what the firmware holds: constant products counted from the exported constants (bits each constant
uses, nonzero canonical signed digits, zeros free), da4ml's cost of the same graph beside the estimate (cached,
skipped with a reason when the graph cannot be lowered), and the ratio of each estimate to Yosys."""

import json

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from l1tagger.contract.quant import constant_bits, csd_digits
from l1tagger.errors import DataError
from l1tagger.report.estimates import constant_product_cost, estimate_graph
from l1tagger.report.page import cost_comparison

QD = "qonnx.custom_op.general"
torch.set_num_threads(1)


def _naf_weight(n: int) -> int:
    """Nonzero digits of the non-adjacent form, digit by digit (the definition)."""
    count = 0
    while n:
        if n & 1:
            n -= 2 - (n % 4)  # digit +1 (n = 1 mod 4) or -1 (n = 3 mod 4)
            count += 1
        n //= 2
    return count


def test_csd_digits_are_the_non_adjacent_form_weight():
    k = np.arange(-4096, 4097)
    assert csd_digits(k).tolist() == [_naf_weight(abs(int(v))) for v in k]
    # by hand: 7 = 8 - 1, 11 = 16 - 4 - 1, 0.75 on the grid 2^-2 is 3 = 4 - 1, a power of two is one shift
    assert csd_digits([0, 1, 4, 7, 11, 3, 255]).tolist() == [0, 1, 1, 2, 3, 2, 2]
    assert constant_bits([0, 1, 4, 7, 11, 3, 255]).tolist() == [0, 1, 1, 3, 4, 2, 8]
    with pytest.raises(DataError, match="csd_digits"):
        csd_digits([0.5])


def _graph(w, x_bits=4, rows=2, bias=None, w_left=False):
    """x (1, rows, K) on a signed x_bits grid (scale 1) @ W (K, M) integer constants (scale 1, 8-bit container),
    optionally + a bias; with ``w_left`` W (M, K) @ x (1, K, rows) instead (a Linformer projection)."""
    w = np.asarray(w, np.float32)
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in
             [("one", 1.0), ("zero", 0.0), ("xb", float(x_bits)), ("wb", 8.0), ("W", w), ("bb", 8.0)]]
    nodes = [helper.make_node("Quant", ["x", "one", "zero", "xb"], ["xq"], name="qx", domain=QD, signed=1, narrow=0,
                              rounding_mode="FLOOR"),
             helper.make_node("Quant", ["W", "one", "zero", "wb"], ["wq"], name="qw", domain=QD, signed=1, narrow=1,
                              rounding_mode="FLOOR"),
             helper.make_node("MatMul", ["wq", "xq"] if w_left else ["xq", "wq"], ["y"], name="dense")]
    if w_left:
        x_shape, out_shape = [1, w.shape[1], rows], [1, w.shape[0], rows]
    else:
        x_shape, out_shape = [1, rows, w.shape[0]], [1, rows, w.shape[1]]
    out = "y"
    if bias is not None:
        inits.append(numpy_helper.from_array(np.asarray(bias, np.float32), "B"))
        nodes += [helper.make_node("Quant", ["B", "one", "zero", "bb"], ["bq"], name="qb", domain=QD, signed=1,
                                   narrow=0, rounding_mode="FLOOR"),
                  helper.make_node("Add", ["y", "bq"], ["z"], name="bias")]
        out = "z"
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QD, 1)])


W = [[3, 0],   # column 0: 3 = 4 - 1 (2 bits, 2 CSD digits), 4 (1 bit, 1 digit) -> 3 terms, 2 adders
     [4, 7],   # column 1: 7 = 8 - 1 (3 bits, 2 digits)                       -> 2 terms, 1 adder
     [0, 0]]   # zeros: nothing


def test_cost_of_a_small_constant_matrix_equals_a_hand_count():
    layer = {l["name"]: l for l in estimate_graph(_graph(W))["layers"]}["dense"]
    # 2 rows x 4-bit x; bits used 2 + 1 + 3 = 6 -> EBOPs 2 * 4 * 6 = 48; adders (3 - 1) + (2 - 1) = 3 per row ->
    # LUT 2 * 4 * 3 = 24; products 2 rows x 3 nonzero
    assert layer["ebops"] == 48 and layer["lut"] == 24 and layer["products"] == 6 and layer["dsp"] == 0
    assert "3 nonzero of 6" in layer["rule"] and "5 CSD digits" in layer["rule"]
    assert constant_product_cost(np.array(W), -2, 2, 4) == {"products": 6, "nonzero": 3, "ebops": 48.0,
                                                            "csd_digits": 5, "adders": 6, "lut": 24.0}
    # a constant on the left (Linformer E @ x, summed over E's columns), each constant used for 3 columns of x:
    # rows of E = W^T: [3, 4, 0] -> 3 digits, 2 adders; [0, 7, 0] -> 2 digits, 1 adder; bits 2 + 1 + 3 = 6
    left = {l["name"]: l for l in estimate_graph(_graph(np.array(W).T, rows=3, w_left=True))["layers"]}["dense"]
    assert left["ebops"] == 3 * 4 * 6 and left["lut"] == 3 * 4 * 3 and left["products"] == 3 * 3


def test_zero_constants_are_free():
    base = {l["name"]: l for l in estimate_graph(_graph(W))["layers"]}["dense"]
    padded = np.zeros((6, 4))
    padded[:3, :2] = W  # more inputs and outputs, all zero
    wide = {l["name"]: l for l in estimate_graph(_graph(padded))["layers"]}["dense"]
    assert (wide["ebops"], wide["lut"], wide["products"]) == (base["ebops"], base["lut"], base["products"])
    pruned = {l["name"]: l for l in estimate_graph(_graph(np.zeros((3, 2))))["layers"]}.get("dense")
    # an all-zero (pruned) matrix folds to a constant: no layer is listed, or one that costs nothing
    assert pruned is None or pruned["ebops"] == pruned["lut"] == pruned["products"] == 0


def test_bias_add_counts_the_bits_each_bias_uses():
    layers = {l["name"]: l for l in estimate_graph(_graph(W, bias=[0, 5]))["layers"]}
    # the sum is 4 + bit_length(max column sum 7) = 7 bits wide; bias 0 is free, 5 = 0b101 uses 3 bits:
    # max(7, 3) + 1 = 8 LUT for each of the 2 rows
    assert layers["bias"]["lut"] == 16


def test_estimate_counts_the_constants_the_export_holds():
    """On an exported HGQ graph the estimate's EBOPs of the linear layers are the HGQ loss's exact count."""
    from l1tagger.export.examples import tiny_config, toy_inputs
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.models import build_model
    from l1tagger.qat.hgq import attach_hgq, ebops_exact
    from l1tagger.qat.ops import QuantOps, calibrate, load_float_state_dict
    from l1tagger.qat.recipe import load_recipe

    torch.manual_seed(0)
    cfg = tiny_config("full")
    recipe = load_recipe("quantize/hgq.yaml")
    q = build_model(cfg, ops=QuantOps(recipe))
    load_float_state_dict(q, build_model(cfg).state_dict())
    attach_hgq(q, recipe.hgq)
    inp = toy_inputs(cfg, 64)
    args = tuple(torch.as_tensor(inp[k]) for k in ("x", "mask", "pair"))
    calibrate(q, [args])
    with torch.no_grad():  # prune a third of the weights of one layer: they must vanish from the estimate
        hq = q.blocks[0].fc1.parametrizations.weight[0]
        hq.f[:, : hq.f.shape[1] // 3] = -20.0
    per_layer = ebops_exact(q, per_layer=True)
    w = export_qonnx_model(q, tuple(a[:1] for a in args))
    est = estimate_graph(w.model)
    linear = sum(v for name, v in per_layer.items() if not any(s in name for s in ("qk", "av", "bias", "res")))
    const = sum(l["ebops"] for l in est["layers"] if l["op"] == "MatMul" and "constant" in l["rule"])
    assert const == linear


def test_cost_comparison_ratios_to_yosys():
    est = {"total": {"lut": 1200.0, "dsp": 2.0, "ebops": 900.0, "cost": 1310.0}}
    rtl = {"yosys": {"LUT": 1000, "DSP": 0, "tool_version": "0.9"}}
    cc = cost_comparison(est, {"status": "ok", "lut": 800.0, "latency_cycles": 4, "source": "da4ml"}, rtl)
    ratios = {r["source"]: r["ratio_to_yosys_lut"] for r in cc["rows"]}
    assert ratios == {"estimate": 1.2, "da4ml": 0.8, "yosys": 1.0}
    assert [r["ratio_to_yosys_lut"] for r in cost_comparison(est, None, None)["rows"]] == [None]
    skipped = cost_comparison(est, {"status": "skipped", "reason": "rounds half to even"}, None)
    assert skipped["da4ml_skipped"] == "rounds half to even" and len(skipped["rows"]) == 1


def _exported(recipe, path):
    from l1tagger.export.examples import example_model, toy_inputs
    from l1tagger.export.export import export_qonnx_model

    _, q, cfg = example_model("full", recipe)
    inp = toy_inputs(cfg, 8)
    export_qonnx_model(q, tuple(torch.as_tensor(inp[k][:1]) for k in ("x", "mask", "pair")), path)
    return path


def test_da4ml_cost_in_the_report_without_the_rtl_step(tmp_path):
    pytest.importorskip("da4ml")
    from l1tagger.report.da4ml_cost import CACHE_NAME, DEFAULT_LATENCY_CUTOFF
    from l1tagger.report.make import write_report
    from l1tagger.rtl.lower import lower_model
    from l1tagger.rtl.project import RtlConfig

    assert RtlConfig().latency_cutoff == DEFAULT_LATENCY_CUTOFF
    run = tmp_path / "run"
    onnx = _exported("quantize/int8_floor.yaml", run / "model.onnx")  # no rtl/, no HLS project
    rep = write_report(run)["report"]
    d = rep["da4ml_cost"]
    assert d["status"] == "ok" and d["lut"] == pytest.approx(lower_model(onnx).comb.cost) and d["latency_cycles"] >= 1
    assert [r["source"] for r in rep["cost_comparison"]["rows"]] == ["estimate", "da4ml"]
    assert rep["comparison"]["ours"][0]["da4ml_lut"] == d["lut"]
    assert "| da4ml |" in (run / "report.md").read_text()
    # cached beside the graph: the report reads the record instead of lowering again
    cache = run / CACHE_NAME
    data = json.loads(cache.read_text())
    data["record"]["lut"] = 12345.0
    cache.write_text(json.dumps(data))
    assert write_report(run)["report"]["da4ml_cost"]["lut"] == 12345.0
    # another graph in the same place is not answered from the cache
    _exported("quantize/int6_floor.yaml", onnx)
    assert write_report(run)["report"]["da4ml_cost"]["lut"] != 12345.0


def test_da4ml_cost_skipped_with_the_reason_when_the_graph_cannot_be_lowered(tmp_path):
    pytest.importorskip("da4ml")
    from l1tagger.report.make import write_report

    run = tmp_path / "run"
    _exported("quantize/int8.yaml", run / "model.onnx")  # half-to-even rounding: da4ml cannot round like it
    rep = write_report(run)["report"]
    d = rep["da4ml_cost"]
    assert d["status"] == "skipped" and "rounding_mode='ROUND'" in d["reason"]
    assert rep["cost_comparison"]["da4ml_skipped"] == d["reason"]
    assert "skipped: the graph cannot be lowered" in (run / "report.md").read_text()


def _reachable_inputs(comb, out_index: int) -> set[int]:
    """Input indices that da4ml's logic reads to compute output ``out_index`` (its operation graph, backwards)."""
    seen, stack, inputs = set(), [comb.out_idxs[out_index]], set()
    while stack:
        i = stack.pop()
        if i < 0 or i in seen:
            continue
        seen.add(i)
        op = comb.ops[i]
        if op.opcode == -1:
            inputs.add(op.id0)
            continue
        stack += [op.id0, op.id1]
        if op.opcode in (6, -6):  # multiplexer: the select bit is in the data field
            stack.append(op.data & 0xFFFFFFFF)
    return inputs


def test_constant_products_are_shift_and_add_and_pruned_weights_absent_from_hls_and_rtl(tmp_path):
    """The HLS project writes a product by constant weights as shift-and-add (da4ml's CMVM code in the layer's
    config struct), C-simulated bit-exact; a weight trained to 0 bits is read neither there nor in the RTL."""
    import re

    from qonnx.core.modelwrapper import ModelWrapper

    from l1tagger.convert import convert
    from l1tagger.rtl.lower import lower_model
    from l1tagger.verify.csim import run_csim
    from l1tagger.verify.graphs import save

    path = tmp_path / "w.onnx"
    save(ModelWrapper(_graph(W, bias=[0, 5])), path)  # input 2 of each row meets only zero weights
    x = np.random.default_rng(0).uniform(-9, 9, size=(200, 2, 3)).astype(np.float32)
    hls = convert(path, tmp_path / "prj", tb_inputs={"x": x}, n_tb=200)
    layer = next(l for l in hls.get_layers() if l.class_name == "L1ConstMatMul")
    assert "l1t::cmatmul<" in layer.get_attr("function_cpp")
    assert not [l for l in hls.get_layers() if l.class_name in ("L1MatMul", "L1Const")
                and l.get_attr("l1")["full_shape"] == (3, 2)]  # no weight array, no generic multiplier
    params = (tmp_path / "prj" / "firmware" / "parameters.h").read_text()
    body = params[params.index("static void cmvm("):].split("{", 1)[1]  # after the signature
    body = body[:body.index("\n    }\n")]
    read = set(map(int, re.findall(r"model_inp\[(\d+)\]", body)))
    assert read == {0, 1} and "*" not in body  # shifts and adds only; input 2 is never read
    res = run_csim(tmp_path / "prj")
    assert res.bit_exact and res.n_jets == 200 and res.mismatching_values == 0
    # the RTL: outputs of row r = 0, 1 read x[r, 0] and x[r, 1], never x[r, 2] (flat inputs 2 and 5)
    comb = lower_model(path).comb
    used = set().union(*(_reachable_inputs(comb, j) for j in range(4)))
    assert used == {0, 1, 3, 4}
    assert _reachable_inputs(comb, 1) == {1}  # column 1 = 7 x[0, 1]: W[0, 1] = 0 reads nothing either
