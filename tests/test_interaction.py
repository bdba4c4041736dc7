"""Issue 15 item 3: the interaction bias U at hardware cost (docs/interaction.md).

Every design of ``model.interaction`` (mlp, mlp_sym, table, table_sym), on off-chip features and on L1 words, trains a
step in float and in QAT, exports, and is bit-exact Brevitas == QONNX == integer reference and against da4ml's RTL
interpreter on >= 200 jets (the issue's edge words included on L1 words); one HLS C simulation each for ``table`` and
``mlp_sym``; the table op refuses a wrong table / unknown attribute naming it; a one-LSB change of a table entry is
caught.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from edge_words import edge_words
from onnx import helper, numpy_helper

from l1tagger.contract import pairtable
from l1tagger.contract.l1features import PAIR_OP, PAIR_VARIANTS, full_from_upper_index, upper_pair_index
from l1tagger.errors import ConfigError

N = 8
DESIGNS = ("mlp", "mlp_sym", "table", "table_sym")
RECIPE = "quantize/int8_floor.yaml"


def _cfg(design: str, inputs: str, attention: str = "full", delta: str = "d2"):
    from l1tagger.models.config import ModelConfig

    extra = {"features": "l1"} if inputs == "features" else {}
    if PAIR_VARIANTS[delta]:
        extra["l1features"] = dict(PAIR_VARIANTS[delta])
    return ModelConfig.from_dict(dict(n_particles=N, n_classes=3, d_model=8, n_heads=2, ffn_dim=8, embed_dim=8,
                                      head_dim=8, pair_hidden=4, interaction=design, pair_table_bits=4,
                                      inputs=inputs, attention=attention, **extra))


def _data(cfg, toy_jets):
    """(feed of the exported graph, torch args of the model, labels): 256 toy jets (+ the edge words on words)."""
    from l1tagger.features.inputs import build_inputs

    inp, _ = build_inputs(toy_jets, cfg)
    labels = torch.as_tensor(inp.labels)
    if cfg.inputs == "l1words":
        words = np.concatenate([inp.x, edge_words(N).astype(np.float32)])
        labels = torch.cat([labels, torch.zeros(len(words) - len(inp.x), dtype=torch.long)])
        return {"words": words}, (torch.as_tensor(words),), labels
    feed = {"x": inp.x, "mask": inp.mask, "pair": inp.pair}
    return feed, tuple(torch.as_tensor(feed[k]) for k in ("x", "mask", "pair")), labels


def _train_step(model, args, labels):
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loss = torch.nn.functional.cross_entropy(model(*args), labels)
    opt.zero_grad()
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()
             if n.startswith("pair.") and n.endswith(("weight", "table.table"))}  # a bias of U is softmax-invariant
    opt.step()
    return grads


_BUILT: dict = {}


def built(design: str, inputs: str, toy_jets, tmp_path_factory, attention: str = "full", delta: str = "d2") -> dict:
    """Train a float step and a QAT step, export (cached per design / inputs / attention / on-chip angle)."""
    key = (design, inputs, attention, delta)
    if key in _BUILT:
        return _BUILT[key]
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.models import build_model
    from l1tagger.qat.ops import QuantOps, calibrate, load_float_state_dict

    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = _cfg(design, inputs, attention, delta)
    feed, args, labels = _data(cfg, toy_jets)
    fmodel = build_model(cfg)
    fgrads = _train_step(fmodel, args, labels)
    ops = QuantOps(RECIPE)
    qmodel = build_model(cfg, ops=ops)
    ops.check_overrides_used()
    load_float_state_dict(qmodel, fmodel.state_dict())
    calibrate(qmodel, [args] * 2)
    qgrads = _train_step(qmodel.train(), args, labels)
    calibrate(qmodel, [args])
    d = tmp_path_factory.mktemp(f"{design}_{inputs}_{attention}_{delta}")
    names = ("words",) if inputs == "l1words" else ("x", "mask", "pair")
    wrapper = export_qonnx_model(qmodel, tuple(a[:1] for a in args), d / "model.onnx", input_names=names)
    _BUILT[key] = {"cfg": cfg, "feed": feed, "qmodel": qmodel, "wrapper": wrapper, "onnx": d / "model.onnx",
                   "dir": d, "fgrads": fgrads, "qgrads": qgrads}
    return _BUILT[key]


# ---------------------------------------------------------------------------------------------- config
def test_config_interaction_is_validated_and_reaches_the_run_config(tmp_path):
    from l1tagger.models.config import ModelConfig
    from l1tagger.pipeline.config import dump_run_config, load_run_config

    assert ModelConfig().interaction == "mlp"  # the default stays today's design
    cfg = ModelConfig.from_dict({"interaction": "table_sym", "pair_table_bits": 6})
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg and cfg.symmetric_pairs
    with pytest.raises(ConfigError, match="interaction: 'tables' is not one of"):
        ModelConfig.from_dict({"interaction": "tables"})
    with pytest.raises(ConfigError, match="pair_table_bits: 11 is outside"):
        ModelConfig.from_dict({"pair_table_bits": 11})
    with pytest.raises(ConfigError, match="l1features: 'pairs' is set by model.interaction"):
        ModelConfig.from_dict({"inputs": "l1words", "l1features": {"pairs": "upper"}})
    sym = ModelConfig.from_dict({"inputs": "l1words", "interaction": "mlp_sym"})
    assert sym.chip_spec.pairs == "upper" and sym.l1_spec.pairs == "full"
    assert sym.chip_spec.table_digest() == sym.l1_spec.table_digest()
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  interaction: tables\n")
    with pytest.raises(ConfigError, match=r"^model\.interaction: 'tables' is not one of"):
        load_run_config(bad)  # the run fails before any step
    good = tmp_path / "good.yaml"
    good.write_text("model:\n  interaction: table\n")
    assert "interaction: table\n" in dump_run_config(load_run_config(good))


def test_symmetric_pair_indices_and_upper_pair_features():
    from l1tagger.contract.l1features import L1FeatureSpec, features_np

    up, back = upper_pair_index(N), full_from_upper_index(N)
    assert len(up) == N * (N + 1) // 2 and len(back) == N * N
    i, j = np.divmod(up, N)
    assert np.all(i <= j)
    grid = np.arange(N * N).reshape(N, N)
    sym = np.minimum(grid, grid.T).ravel()  # flat index of (min, max)
    assert np.array_equal(up[back], np.where(sym == grid.ravel(), grid.ravel(), grid.T.ravel()))
    words = edge_words(N)
    full = features_np(words, L1FeatureSpec())["pair"]
    upper = features_np(words, L1FeatureSpec(pairs="upper"))["pair"]
    assert upper.shape == (len(words), len(up), 4)
    assert np.array_equal(upper, full.reshape(len(words), N * N, 4)[:, up])
    assert np.array_equal(upper[:, back].reshape(full.shape), full)  # the features are symmetric in (i, j)
    assert "pairs" not in L1FeatureSpec().to_dict() and L1FeatureSpec(pairs="upper").to_dict()["pairs"] == "upper"
    with pytest.raises(ConfigError, match="field 'pairs' = 'lower'"):
        L1FeatureSpec(pairs="lower")


def test_pair_table_spec_and_semantics():
    spec = pairtable.PairTableSpec(3, 2, (-1.0, 0.0), (-1, 0))
    x = np.array([[-1.0, 0.0], [-0.5, 2.5], [5.0, -3.0], [-2.0, 100.0]])
    assert pairtable.indices(x, spec).tolist() == [[0, 0], [1, 2], [7, 0], [0, 7]]
    xi = (x * 4).astype(np.int64)  # the same values on the grid 2^-2
    assert pairtable.indices_int(xi, 2, spec).tolist() == pairtable.indices(x, spec).tolist()
    t = np.arange(2 * 2 * 8, dtype=np.float64).reshape(2, 2, 8) / 8
    u = pairtable.pairtable_np(x, t, spec)
    assert u.shape == (4, 2) and u[1, 1] == t[0, 1, 1] + t[1, 1, 2]
    with pytest.raises(ConfigError, match="'lo' index 0 = 0.3: must be a finite multiple of the bin width 2"):
        pairtable.PairTableSpec(3, 2, (0.3, 0.0), (-1, 0))
    with pytest.raises(ConfigError, match="field 'bits' = 11"):
        pairtable.PairTableSpec(11, 2, (0.0,), (0,))
    assert pairtable.PairTableSpec.from_json(spec.to_json()) == spec
    for bad, msg in (({**spec.to_dict(), "bitz": 3}, r"^spec\.bitz: unknown key"),
                     ({"bits": 3, "n_heads": 2, "lo": [0.0]}, r"^spec\.exp: missing"),
                     ({**spec.to_dict(), "lo": ["a", 0.0]}, r"^spec\.lo\[0\]: expected float")):
        with pytest.raises(ConfigError, match=msg):
            pairtable.PairTableSpec.from_dict(bad, "spec")
    with pytest.raises(ConfigError, match=r"table shape \(2, 2, 7\), the spec needs"):
        pairtable.pairtable_np(x, t[..., :7], spec)
    lo, e = pairtable.calibrate_range(np.linspace(-3.2, 4.1, 1000), 5, quantile=0.0)
    assert lo <= -3.2 and lo + 32 * 2.0**e >= 4.1 and lo % 2.0**e == 0


# ---------------------------------------------------------------------------------------------- every design
@pytest.mark.parametrize("inputs", ["features", "l1words"])
@pytest.mark.parametrize("design", DESIGNS)
def test_design_trains_exports_and_is_bit_exact(design, inputs, toy_jets, tmp_path_factory):
    from l1tagger.export.crosscheck import crosscheck
    from l1tagger.export.reference import run_reference
    from l1tagger.report.estimates import estimate_graph
    from l1tagger.rtl.flow import interpreter_check
    from l1tagger.rtl.lower import lower_model

    b = built(design, inputs, toy_jets, tmp_path_factory)
    for grads in (b["fgrads"], b["qgrads"]):  # float and QAT steps reach U's parameters
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads.values()), grads.keys()
    if design.startswith("table"):
        assert "pair.table.table" in b["qgrads"]  # straight through the table quantizer
    ops = [n.op_type for n in b["wrapper"].graph.node]
    assert (pairtable.PAIR_TABLE_OP in ops) == design.startswith("table")
    assert ("Gather" in ops) or not design.endswith("_sym")
    if inputs == "l1words":
        pair_node = next(n for n in b["wrapper"].graph.node if n.op_type == PAIR_OP)
        spec = json.loads(helper.get_attribute_value(pair_node.attribute[0]))
        assert spec.get("pairs", "full") == ("upper" if design.endswith("_sym") else "full")
    feed = b["feed"]
    n = len(next(iter(feed.values())))
    assert n >= 200
    check = crosscheck(b["qmodel"], b["wrapper"], feed)  # Brevitas == QONNX == integer reference, every tensor
    assert check.n_jets == n and check.ok, check.first_mismatch
    lowered = lower_model(b["onnx"], progress=False)
    res = interpreter_check(lowered, feed, run_reference(b["wrapper"], feed))
    assert res["n_jets"] == n and res["bit_exact"], res["first_mismatch"]
    est = estimate_graph(b["wrapper"].model)
    u = est["blocks"]["interaction U"]
    assert u["lut"] > 0
    if design.startswith("table"):
        layer = next(x for x in est["layers"] if x["op"] == pairtable.PAIR_TABLE_OP)
        assert layer["lut"] > 0 and layer["ebops"] == 0
        rows = N * (N + 1) // 2 if design.endswith("_sym") else N * N
        assert layer["rule"].startswith(f"{rows} pair rows")


def test_symmetric_mlp_costs_about_half(toy_jets, tmp_path_factory):
    from l1tagger.report.estimates import estimate_graph

    u = {d: estimate_graph(built(d, "features", toy_jets, tmp_path_factory)["wrapper"].model)["blocks"]
         ["interaction U"]["ebops"] for d in ("mlp", "mlp_sym")}
    assert 0.4 * u["mlp"] < u["mlp_sym"] < 0.7 * u["mlp"], u  # N(N+1)/2 of N^2 rows = 56 %


def test_linformer_table_sym_is_bit_exact(toy_jets, tmp_path_factory):
    from l1tagger.export.crosscheck import crosscheck
    from l1tagger.export.reference import run_reference
    from l1tagger.rtl.flow import interpreter_check
    from l1tagger.rtl.lower import lower_model

    b = built("table_sym", "features", toy_jets, tmp_path_factory, attention="linformer")
    check = crosscheck(b["qmodel"], b["wrapper"], b["feed"])
    assert check.ok, check.first_mismatch
    res = interpreter_check(lower_model(b["onnx"], progress=False), b["feed"], run_reference(b["wrapper"], b["feed"]))
    assert res["bit_exact"], res["first_mismatch"]


def test_linformer_on_words_with_the_product_free_angle_is_bit_exact_and_cheaper(toy_jets, tmp_path_factory):
    """model.l1features.delta = lse (docs/l1_inputs.md): the tagger trains on the lse integers, exports them (the spec
    in the node says so), Brevitas == QONNX == integer reference and da4ml's RTL == QONNX on the toy and edge words;
    its pair-feature block has no products and costs less than d2's."""
    from l1tagger.export.crosscheck import crosscheck
    from l1tagger.export.reference import run_reference
    from l1tagger.report.estimates import estimate_graph
    from l1tagger.rtl.flow import interpreter_check
    from l1tagger.rtl.lower import lower_model

    b = built("table_sym", "l1words", toy_jets, tmp_path_factory, attention="linformer", delta="lse")
    pair_node = next(n for n in b["wrapper"].graph.node if n.op_type == PAIR_OP)
    assert json.loads(helper.get_attribute_value(pair_node.attribute[0]))["delta"] == "lse"
    check = crosscheck(b["qmodel"], b["wrapper"], b["feed"])
    assert check.ok, check.first_mismatch
    res = interpreter_check(lower_model(b["onnx"], progress=False), b["feed"], run_reference(b["wrapper"], b["feed"]))
    assert res["bit_exact"], res["first_mismatch"]
    d2 = built("table_sym", "l1words", toy_jets, tmp_path_factory, attention="linformer")
    cost = {k: estimate_graph(v["wrapper"].model)["blocks"]["pair features"] for k, v in (("lse", b), ("d2", d2))}
    assert cost["lse"]["dsp"] == 0 < cost["d2"]["dsp"] and cost["lse"]["lut"] < cost["d2"]["lut"], cost


@pytest.mark.parametrize("pair_set", ["words", "part_codes"])
def test_u_straight_from_the_words_is_bit_exact_in_every_walker(pair_set, toy_jets, tmp_path_factory):
    """model.l1features.pair_set = words / part_codes (docs/interaction.md): a Linformer with table_sym U indexed by
    angle codes and the pt logs trains, exports (the node's spec says so), Brevitas == QONNX == integer reference,
    da4ml's RTL == QONNX and the HLS C simulation == QONNX on the toy and edge words; its pair features cost less
    than lse's (estimate and da4ml)."""
    from l1tagger.convert import convert
    from l1tagger.export.crosscheck import crosscheck
    from l1tagger.export.reference import run_reference
    from l1tagger.report.estimates import estimate_graph
    from l1tagger.rtl.flow import interpreter_check
    from l1tagger.rtl.lower import lower_model
    from l1tagger.verify.csim import run_csim

    b = built("table_sym", "l1words", toy_jets, tmp_path_factory, attention="linformer", delta=pair_set)
    pair_node = next(n for n in b["wrapper"].graph.node if n.op_type == PAIR_OP)
    assert json.loads(helper.get_attribute_value(pair_node.attribute[0]))["pair_set"] == pair_set
    assert b["qgrads"] and all(g is not None and g.abs().sum() > 0 for g in b["qgrads"].values())
    check = crosscheck(b["qmodel"], b["wrapper"], b["feed"])
    assert check.ok, check.first_mismatch
    lowered = lower_model(b["onnx"], progress=False)
    res = interpreter_check(lowered, b["feed"], run_reference(b["wrapper"], b["feed"]))
    assert res["bit_exact"], res["first_mismatch"]
    prj = b["dir"] / "prj"
    convert(b["onnx"], prj, tb_inputs=b["feed"], n_tb=len(b["feed"]["words"]))
    cs = run_csim(prj)
    assert cs.n_jets == len(b["feed"]["words"]) and cs.mismatching_values == 0 and cs.bit_exact, cs.first_mismatch
    lse = built("table_sym", "l1words", toy_jets, tmp_path_factory, attention="linformer", delta="lse")
    cost = {k: estimate_graph(v["wrapper"].model)["blocks"]["pair features"]["lut"] for k, v in (("words", b),
                                                                                                 ("lse", lse))}
    assert cost["words"] < cost["lse"], cost
    node = next(n.name for n in lse["wrapper"].graph.node if n.op_type == PAIR_OP)
    da4ml_lse = lower_model(lse["onnx"], progress=False).node_cost[node]
    assert lowered.node_cost[pair_node.name] < da4ml_lse


# ---------------------------------------------------------------------------------------------- HLS C simulation
# the per-pair MLP on unique pairs (~70 s of C simulation) runs under -m slow; the table design by default
@pytest.mark.parametrize("design", ["table", pytest.param("mlp_sym", marks=pytest.mark.slow)])
def test_hls_csim_bit_exact_on_words_with_edge_words(design, toy_jets, tmp_path_factory):
    from l1tagger.convert import convert
    from l1tagger.verify.csim import run_csim

    b = built(design, "l1words", toy_jets, tmp_path_factory)
    feed = b["feed"]
    assert np.array_equal(feed["words"][-len(edge_words(N)):], edge_words(N))
    prj = b["dir"] / "prj"
    convert(b["onnx"], prj, tb_inputs=feed, n_tb=len(feed["words"]))
    res = run_csim(prj)
    assert res.n_jets == len(feed["words"]) >= 200
    assert res.mismatching_values == 0 and res.bit_exact, res.first_mismatch
    if design == "table":
        assert "l1t::pairtable<" in "".join(p.read_text() for p in (prj / "firmware").glob("*.cpp"))


# ---------------------------------------------------------------------------------------------- refusals, planted error
def _table_node(model):
    return next(n for n in model.graph.node if n.op_type == pairtable.PAIR_TABLE_OP)


def test_table_op_refuses_unknown_attribute_and_wrong_table_shape(toy_jets, tmp_path_factory):
    from qonnx.core.modelwrapper import ModelWrapper

    from l1tagger.convert.frontend import build_layer_list
    from l1tagger.export.intref import run_intref
    from l1tagger.report.estimates import estimate_graph
    from l1tagger.rtl.lower import lower_model

    b = built("table", "features", toy_jets, tmp_path_factory)
    feed = {k: v[:4] for k, v in b["feed"].items()}
    extra = onnx.ModelProto()
    extra.CopyFrom(b["wrapper"].model)
    node = _table_node(extra)
    node.attribute.append(helper.make_attribute("rounding", "floor"))
    walkers = (lambda m: run_intref(ModelWrapper(m), feed), lambda m: build_layer_list(ModelWrapper(m)),
               lambda m: lower_model(m, progress=False), estimate_graph)
    for walk in walkers:
        with pytest.raises(ConfigError, match=rf"L1PairTable node '{node.name}': unknown attribute\(s\) "
                                              rf"\['rounding'\]"):
            walk(extra)
    shape = onnx.ModelProto()
    shape.CopyFrom(b["wrapper"].model)
    node = _table_node(shape)
    quant = next(n for n in shape.graph.node if n.output[0] == node.input[1])
    init = next(i for i in shape.graph.initializer if i.name == quant.input[0])
    t = numpy_helper.to_array(init)
    init.CopyFrom(numpy_helper.from_array(np.concatenate([t, t[..., :1]], -1), init.name))
    for walk in walkers:
        with pytest.raises(ConfigError, match=rf"L1PairTable node '{node.name}'.*table shape \(4, 2, 17\), the "
                                              rf"spec needs \(features, heads, 2\^bits\) = \(4, 2, 16\)"):
            walk(shape)


def test_one_lsb_in_a_table_entry_is_caught(toy_jets, tmp_path_factory):
    from qonnx.core.modelwrapper import ModelWrapper

    from l1tagger.contract.quant import decode_quant
    from l1tagger.export.crosscheck import crosscheck
    from l1tagger.export.reference import run_reference
    from l1tagger.rtl.flow import interpreter_check
    from l1tagger.rtl.lower import lower_model

    b = built("table", "features", toy_jets, tmp_path_factory)
    m = onnx.ModelProto()
    m.CopyFrom(b["wrapper"].model)
    node = _table_node(m)
    spec = pairtable.spec_of_node(node)
    quant = next(n for n in m.graph.node if n.output[0] == node.input[1])
    inits = {i.name: i for i in m.graph.initializer}
    q = decode_quant(quant, *(numpy_helper.to_array(inits[n]) for n in quant.input[1:4]))
    t = numpy_helper.to_array(inits[quant.input[0]]).copy()
    # the entry of feature 0, head 0 that the most real pairs read
    pair = b["feed"]["pair"]
    real = np.any(pair != 0, axis=-1)
    idx = pairtable.indices(np.floor(pair[real].astype(np.float64) * 16) / 16, spec)[:, 0]
    e = int(np.bincount(idx).argmax())
    tq = q.apply(t)
    t[0, 0, e] = tq[0, 0, e] + (-q.scale if tq[0, 0, e] > 0 else q.scale)  # one LSB, inside the range
    inits[quant.input[0]].CopyFrom(numpy_helper.from_array(t.astype(np.float32), quant.input[0]))
    planted = ModelWrapper(m)
    check = crosscheck(b["qmodel"], planted, b["feed"])
    assert not check.ok and check.brevitas_vs_qonnx_mismatches > 0
    assert check.first_mismatch_node == quant.name  # caught at the table itself (the Quant of the initializer)
    # and the RTL of the planted graph against the original graph's reference
    ref = run_reference(b["wrapper"], b["feed"], return_all=True)
    res = interpreter_check(lower_model(m, progress=False, probes=[node.output[0]]), b["feed"],
                            {node.output[0]: ref[node.output[0]]})
    assert not res["bit_exact"] and res["n_mismatches"] > 0
