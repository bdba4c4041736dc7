"""HGQ: per-weight fractional bits (values and straight-through gradients, pruning), exact EBOPs against hand
counts, strict ``hgq:`` recipe parsing, the accumulator bound, and a 1-epoch fine-tune of each attention kind that
lowers EBOPs and exports bit-exact (Brevitas == QONNX == integer emulation)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from l1tagger.errors import ConfigError, DataError
from l1tagger.qat import hgq
from l1tagger.qat.recipe import load_recipe, parse_recipe

RECIPES = Path(__file__).resolve().parents[1] / "quantize"
torch.set_num_threads(1)


# ------------------------------------------------------------------ the quantizer
def test_weight_quantizer_values_and_straight_through_gradients():
    q = hgq.HGQWeightQuant((1, 5), bits=8, frac=4, init_frac=0.0)
    with torch.no_grad():
        q.f.copy_(torch.tensor([[2.0, 1.2, 0.0, 5.0, 4.0]]))  # f=5 is clamped to the container's frac=4
    w = torch.tensor([[0.30, -0.70, 0.05, 3.90, 9.0]], requires_grad=True)
    out = q(w)
    # 0.30*4=1.2->1 -> 0.25; -0.70*2=-1.4->-1 -> -0.5; 0.05*1 -> 0 (pruned); 3.9*16=62.4->62 -> 3.875;
    # 9.0 saturates at the narrow container limit 127/16
    assert out.tolist() == [[0.25, -0.5, 0.0, 3.875, 127 / 16]]
    assert torch.equal(q.fi().detach(), torch.tensor([[2.0, 1.0, 0.0, 4.0, 4.0]]))
    out.sum().backward()
    # dq/dw = 1 (straight-through rounding), 0 where the container saturates
    assert w.grad.tolist() == [[1.0, 1.0, 1.0, 1.0, 0.0]]
    # dq/df = ln2 * (w - q): the HGQ surrogate, also through the clamped f
    expect = [math.log(2) * (a - b) for a, b in zip([0.30, -0.70, 0.05, 3.90], [0.25, -0.5, 0.0, 3.875])] + [0.0]
    assert q.f.grad[0].tolist() == pytest.approx(expect, rel=1e-5, abs=1e-7)


def test_channel_granularity_shares_f_per_output():
    q = hgq.HGQWeightQuant((3, 4), bits=8, frac=4, init_frac=2.0, granularity="channel")
    assert tuple(q.f.shape) == (3, 1)
    with pytest.raises(ConfigError, match="granularity"):
        hgq.HGQWeightQuant((3, 4), bits=8, frac=4, init_frac=2.0, granularity="row")


def test_constant_bits_counts_the_span_of_set_bits():
    k = np.array([0, 1, -3, 4, 5, 12, -0.0, 255, 2**40])
    assert hgq.constant_bits(k).tolist() == [0, 1, 2, 1, 3, 2, 0, 8, 1]
    with pytest.raises(DataError, match="integers"):
        hgq.constant_bits([0.5])


class _Hand(torch.nn.Module):
    """input (fixed<8,4>) -> linear 3->2 -> [matmul y y^T, mask mul, residual add]."""

    def __init__(self, ops):
        super().__init__()
        self.inp = ops.input_quant("input.x")
        self.lin = ops.linear("lin", 3, 2, bias=False)
        self.mm = ops.matmul("mm")
        self.mk = ops.mul("mk")
        self.ad = ops.add("ad")

    def forward(self, x, mask):
        y = self.lin(self.inp(x))  # (1, 4, 2)
        s = self.mm(y, y.transpose(1, 2))  # (1, 4, 4): 4*2*4 = 32 products
        m = self.mk(y, mask.unsqueeze(-1))  # 8 elements x 1-bit mask
        return self.ad(m, y), s  # 8 elements, an adder of max(bits)


def _hand_model(weights):
    from l1tagger.qat.ops import QuantOps

    ops = QuantOps(load_recipe("hgq"))
    m = _Hand(ops)
    with torch.no_grad():
        m.lin.weight.copy_(torch.tensor(weights))
    hgq.cost_graph(m, (torch.zeros(1, 4, 3), torch.ones(1, 4)))
    return m


def test_ebops_exact_equals_a_hand_count():
    # container fixed<10,3>: grid 2^-7. k = w*128: 64, 0, -96 | 136, 256, 0 -> bits 1, 0, 2 | 5, 1, 0 = 9
    m = _hand_model([[0.5, 0.0, -0.75], [1.0625, 2.0, 0.0]])
    terms = {t.module: t for t in hgq.cost_graph(m).terms}
    assert terms["lin"].operands == (("inp",),) and terms["lin"].count == 4
    assert terms["mm"].operands == (("lin",), ("lin",)) and terms["mm"].count == 32
    assert terms["mk"].operands == (("lin",), (hgq.MASK,))
    assert terms["ad"].operands == (("mk.out",), ("lin",))  # a QuantBinary output is its .out quantizer
    hand = {"lin": 4 * 8 * 9, "mm": 32 * 8 * 8, "mk": 8 * 8 * 1, "ad": 8 * 8}  # all activations 8 bits
    assert hgq.ebops_exact(m, per_layer=True) == hand
    assert hgq.ebops_exact(m) == sum(hand.values())
    # narrower activations enter the count: the linear output at 5 bits
    bw = m.lin.output_quant.fused_activation_quant_proxy.tensor_quant.msb_clamp_bit_width_impl.bit_width_offset
    with torch.no_grad():
        bw.sub_(3.0)
    assert hgq.ebops_exact(m, per_layer=True) == {"lin": 288, "mm": 32 * 5 * 5, "mk": 8 * 5, "ad": 8 * 8}


def test_pruned_weight_costs_nothing_and_surrogate_is_exact():
    m = _hand_model([[0.5, 0.3, -0.75], [1.0625, 2.0, 0.01]])
    hgq.attach_hgq(m, load_recipe("hgq").hgq)
    hq = hgq.hgq_quantizer(m.lin)
    with torch.no_grad():
        hq.f.fill_(7.0)
        hq.f[0, 1] = -1.0  # 0.3 * 2^-1 rounds to 0: pruned
    assert float(m.lin.weight[0, 1]) == 0.0
    bits = hgq.weight_bits(m.lin)
    assert bits[0, 1] == 0 and bits.detach().tolist() == [[1, 0, 2], [5, 1, 1]]
    e = hgq.ebops(m)
    assert float(e) == hgq.ebops_exact(m)  # the surrogate's value is the exact count
    e.backward()
    # d EBOPs / d f = n_apply * bits(x) = 4 * 8 per kept weight; a pruned weight has no bits to lose
    assert hq.f.grad.tolist() == [[32.0, 0.0, 32.0], [32.0, 32.0, 32.0]]
    # the activation width gets the gradient of every operation it feeds
    bw = m.lin.output_quant.fused_activation_quant_proxy.tensor_quant.msb_clamp_bit_width_impl.bit_width_offset
    assert bw.grad is not None and float(bw.grad) > 0


def test_interaction_tables_are_costed_by_their_entry_width():
    """The table design of U (PairTable): one 'lookup' term, rows x F x H x ceil(2^bits / 64) x bits(T), whose
    width gets a gradient from the EBOPs (the entries' width is trained against the cost); a narrower table width
    enters the exact count."""
    from l1tagger.models import ModelConfig, build_model
    from l1tagger.qat.ops import QuantOps

    n = 8
    cfg = ModelConfig(n_particles=n, inputs="l1words", n_classes=3, d_model=8, n_heads=2, ffn_dim=8, embed_dim=8,
                      head_dim=8, interaction="table_sym", pair_table_bits=7, attention="full")
    q = build_model(cfg, ops=QuantOps(load_recipe("hgq")))
    terms = {t.module: t for t in hgq.cost_graph(q).terms}
    t = terms["pair.table"]
    rows = n * (n + 1) // 2  # the unique pairs
    assert t.kind == "lookup" and t.operands == (("pair.table.table_quant",),)
    assert t.count == rows * 4 * 2 * 2  # 128 entries: two LUT6 per output bit
    per = hgq.ebops_exact(q, per_layer=True)
    assert per["pair.table"] == t.count * 8  # 8-bit entries at the start
    impl = q.pair.table.table_quant.act_quant.fused_activation_quant_proxy.tensor_quant.msb_clamp_bit_width_impl
    with torch.no_grad():
        impl.bit_width_offset.sub_(3.0)
    assert hgq.ebops_exact(q, per_layer=True)["pair.table"] == t.count * 5
    hgq.ebops(q).backward()
    assert impl.bit_width_offset.grad is not None and float(impl.bit_width_offset.grad) >= t.count


def test_cost_graph_of_an_l1words_model():
    from l1tagger.models import ModelConfig, build_model
    from l1tagger.qat.ops import QuantOps

    cfg = ModelConfig(n_particles=8, inputs="l1words", n_classes=3, d_model=8, n_heads=2, ffn_dim=8, embed_dim=8,
                      head_dim=8, pair_hidden=4, attention="linformer")
    q = build_model(cfg, ops=QuantOps(load_recipe("hgq")))
    terms = {t.module: t for t in hgq.cost_graph(q).terms}
    assert terms["embed_fc1"].operands == (("words.x_quant",),)  # the on-chip features' grid
    assert terms["pair.fc1"].operands == (("words.pair_quant",),)
    # the valid bit computed on chip from the words is the 1-bit mask, not a word-wide operand
    assert terms["blocks.0.heads.0.kmask"].operands[1] == (hgq.MASK,)
    assert hgq.ebops_exact(q) > 0


# ------------------------------------------------------------------ recipes
def _hgq_data():
    return yaml.safe_load((RECIPES / "hgq.yaml").read_text())


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["hgq"].pop("target_ebops"), "hgq.target_ebops"),
    (lambda d: d["hgq"].update(target_ebops="big"), "hgq.target_ebops"),
    (lambda d: d["hgq"].update(tagret=1), "hgq.tagret"),
    (lambda d: d["hgq"]["weight"].update(init_frac=9), "hgq.weight.init_frac"),
    (lambda d: d["hgq"]["weight"].update(bits=20), "hgq.weight.bits"),
    (lambda d: d["hgq"]["weight"].update(granularity="row"), "hgq.weight.granularity"),
    (lambda d: d["hgq"]["act"].update(max_bits=2), "hgq.act.max_bits"),
    (lambda d: d["hgq"]["act"].update(trainable="yes"), "hgq.act.trainable"),
    (lambda d: d["hgq"]["schedule"].update(beta_max=1e-9), "hgq.schedule.beta_max"),
    (lambda d: d["hgq"]["schedule"].update(growth=0.5), "hgq.schedule.growth"),
    (lambda d: d["hgq"]["schedule"].update(warmup_epochs=-1), "hgq.schedule.warmup_epochs"),
    (lambda d: d["hgq"]["schedule"].update(adjust="batch"), "hgq.schedule.adjust"),
    (lambda d: d["hgq"]["schedule"].update(settle_epochs=1.5), "hgq.schedule.settle_epochs"),
    (lambda d: d["hgq"]["schedule"].update(margin=0.9), "hgq.schedule.margin"),
    (lambda d: d["hgq"]["lr"].update(frac=0), "hgq.lr.frac"),
    (lambda d: d["hgq"].update(schedule=[1]), "hgq.schedule"),
    (lambda d: d.update(weight={"quantizer": "Int8WeightPerTensorFixedPoint", "bits": 8, "frac": 7}), "weight.bits"),
    (lambda d: d["relu"].update(bits=10), "relu.bits"),
])
def test_hgq_recipe_errors_name_the_field(mutate, field):
    d = _hgq_data()
    mutate(d)
    with pytest.raises(ConfigError) as exc:
        parse_recipe(d)
    assert field in str(exc.value)


@pytest.mark.parametrize("name", ["hgq", "hgq_small"])
def test_hgq_recipes_round_trip(name):
    r = load_recipe(name)
    assert r.hgq is not None and r.kinds["weight"].frac == r.hgq.weight_frac
    again = parse_recipe(r.to_dict())
    assert again.hgq == r.hgq and again.kinds == r.kinds
    assert load_recipe("int8").hgq is None  # the uniform recipes are untouched


def test_override_width_outside_the_trainable_range_names_the_layer():
    from l1tagger.export.examples import tiny_config
    from l1tagger.models import build_model
    from l1tagger.qat.ops import QuantOps

    d = _hgq_data()
    d["overrides"] = {"head.fc1": {"output": {"bits": 12}}}
    with pytest.raises(ConfigError, match="overrides.head.fc1.output.bits"):
        build_model(tiny_config("full"), ops=QuantOps(parse_recipe(d)))


def test_learned_weight_scale_is_refused_by_hgq():
    from l1tagger.export.examples import tiny_config
    from l1tagger.models import build_model
    from l1tagger.qat.ops import QuantOps

    d = _hgq_data()
    d["overrides"] = {"head.fc2": {"weight": {"bits": 8, "frac": None}}}  # a scale computed from the weights
    r = parse_recipe(d)
    q = build_model(tiny_config("full"), ops=QuantOps(r))
    with pytest.raises(ConfigError, match="layer 'head_fc2'.*constant"):
        hgq.attach_hgq(q, r.hgq)


def test_accumulators_stay_below_2_24_lsb():
    from l1tagger.export.examples import example_model

    from l1tagger.export.examples import tiny_config, toy_inputs

    inputs = toy_inputs(tiny_config("full"), 64)
    _, q, _ = example_model("full", RECIPES / "hgq.yaml", inputs)
    hgq.attach_hgq(q, load_recipe("hgq").hgq)
    bounds = hgq.check_accumulators(q, act_max_bits=8)
    assert len(bounds) == 21 and max(bounds.values()) < hgq.ACC_EXACT_BITS
    # the widest container and activations the recipe allows would overflow float32's 24 bits
    d = _hgq_data()
    d["hgq"]["weight"].update(bits=12, frac=9)
    d["hgq"]["act"].update(max_bits=12)
    _, wide, _ = example_model("full", parse_recipe(d), inputs)
    with pytest.raises(ConfigError, match="layer .*2\\^24"):
        hgq.check_accumulators(wide, act_max_bits=12)


def test_schedule_and_selection():
    cfg = load_recipe("hgq").hgq
    import dataclasses

    cfg = dataclasses.replace(cfg, beta0=1.0, beta_max=4.0, beta_growth=2.0, beta_backoff=2.0, warmup_epochs=1,
                              target_ebops=100)
    s = hgq.BetaSchedule(cfg)
    assert s.beta_for(0) == 0.0
    assert s.update(0, 500) == 1.0  # warm-up: no ramp
    assert [s.update(e, 500) for e in (1, 2, 3)] == [2.0, 4.0, 4.0]  # geometric, capped
    assert s.update(4, 90) == 2.0 and s.update(5, 90) == 1.0 and s.update(6, 90) == 1.0  # backs off to beta0
    # per step: the per-epoch factors spread over the steps; update() after the epoch then leaves beta alone
    st = hgq.BetaSchedule(dataclasses.replace(cfg, beta_adjust="step", warmup_epochs=0))
    for _ in range(4):
        b = st.step(0, 500, steps_per_epoch=4)
    assert b == pytest.approx(2.0) and st.update(0, 500) == pytest.approx(2.0)
    for _ in range(8):
        b = st.step(1, 90, steps_per_epoch=4)
    assert b == pytest.approx(1.0)  # /2 per epoch below the target, not below beta0
    assert hgq.BetaSchedule(cfg).step(3, 500, 4) == 1.0  # 'epoch' mode: steps change nothing
    # margin: steered to 0.9 x the target, 95 EBOPs count as above it
    assert hgq.BetaSchedule(dataclasses.replace(cfg, beta_margin=0.1, warmup_epochs=0)).update(0, 95) == 2.0
    m = torch.nn.Linear(1, 1)
    best = hgq.BestEpoch(100)
    best.offer(0, 0.9, 300, m)
    best.offer(1, 0.7, 150, m)
    _, info = best.result()
    assert info["selected_epoch"] == 1 and not info["reached_target"] and "target" in info["warning"]
    best.offer(2, 0.6, 100, m)
    best.offer(3, 0.8, 90, m)
    best.offer(4, 0.8, 95, m)
    _, info = best.result()
    assert info == {"selected_epoch": 3, "reached_target": True, "warning": None}


def test_freeze_keeps_pruned_weights_at_zero_and_widths_fixed():
    from torch.nn.utils import parametrize

    m = _hand_model([[0.004, 0.5, -0.25], [1.0, 0.001, 0.75]])  # two weights below the grid 2^-7: pruned
    hgq.attach_hgq(m, load_recipe("hgq").hgq)
    layer, hq = m.lin, hgq.hgq_quantizer(m.lin)
    assert (layer.weight == 0).tolist() == [[True, False, False], [False, True, False]]
    bw = m.lin.output_quant.fused_activation_quant_proxy.tensor_quant.msb_clamp_bit_width_impl.bit_width_offset
    info = hgq.freeze_hgq(m)
    assert info == {"layers": 1, "pruned": 2} and not hq.f.requires_grad and not bw.requires_grad
    # a pruned weight pushed far from zero stays 0 and gets no gradient; a kept one moves
    with torch.no_grad():
        layer.parametrizations.weight.original[0, 0] = 3.0
        layer.parametrizations.weight.original[0, 1] = 0.75
    w = layer.weight
    assert w[0, 0] == 0 and w[0, 1] == 0.75
    w.sum().backward()
    g = layer.parametrizations.weight.original.grad
    assert g[0, 0] == 0 and g[1, 1] == 0 and g[0, 1] == 1
    hgq.thaw_hgq(m)
    assert hq.keep is None and layer.weight[0, 0] == 3.0  # the mask is gone (the caller restores a kept state)
    assert parametrize.is_parametrized(layer, "weight")


# ------------------------------------------------------------------ fine-tune + exact export
@pytest.fixture(scope="module")
def jets():
    from l1tagger.data.synthetic import toy_jets

    return toy_jets(n_jets=400, max_particles=16, n_classes=3, seed=2)


@pytest.mark.parametrize("attention", ["full", "linformer", "topk"])
def test_finetune_lowers_ebops_and_exports_bit_exact(attention, jets, tmp_path):
    from l1tagger.export.crosscheck import crosscheck
    from l1tagger.export.export import constant_widths, export_qonnx_model
    from l1tagger.models import ModelConfig
    from l1tagger.features.inputs import build_inputs
    from l1tagger.qat.finetune import QATConfig, load_qat_tagger, qat_checkpoint, qat_finetune
    from l1tagger.training import TrainConfig, train

    tr, va, bench = jets.subset(np.arange(128)), jets.subset(np.arange(128, 228)), jets.subset(np.arange(200, 400))
    mc = ModelConfig(n_particles=8, features="l1", n_classes=3, d_model=8, n_heads=2, ffn_dim=8, embed_dim=8,
                     head_dim=8, pair_hidden=4, attention=attention, linformer_k=4, topk_k=3)
    ck = train(TrainConfig(model=mc, epochs=1, batch_size=64, lr=5e-3), tr, va, tmp_path / "float", progress=False)
    res = qat_finetune(ck, load_recipe("hgq"), tr, va, QATConfig(epochs=1, batch_size=16, calib_batches=2),
                       progress=False)
    h0, h1 = res.history
    assert h1["ebops"] < h0["ebops"]  # one epoch under the penalty already costs less
    assert h1["beta"] == res.recipe.hgq.beta0 and h1["ebops_surrogate"] > 0
    assert res.hgq["ebops_start"] == h0["ebops"] and res.hgq["selected_epoch"] in (0, 1)
    assert res.hgq["ebops_final"] == res.history[res.hgq["selected_epoch"]]["ebops"]
    assert "hgq" in res.summary() and not hgq.is_hgq(res.model)  # baked: plain constants

    q = res.model.eval()
    feed = build_inputs(bench, res.tagger.model_config, res.tagger.scaler)[0].graph_feed()
    w = export_qonnx_model(q, tuple(torch.as_tensor(v[:1]) for v in feed.values()), tmp_path / "m.onnx")
    check = crosscheck(q, w, feed)
    assert check.n_jets == 200 and check.ok, check.first_mismatch
    # the graph carries the per-weight widths: its weight constants' bits are the model's
    widths = constant_widths(w)
    weights = [v for v in widths.values() if v["bits"] == res.recipe.hgq.weight_bits and v["frac"] == 7]
    model_bits = sum(int(hgq.weight_bits(m).sum()) for _, m in hgq.quant_linears(q))
    assert sum(int(v["widths"].sum()) for v in weights) == model_bits
    if attention != "full":
        return
    # settle phase: the last epoch trains at frozen widths; the kept epoch restores exactly what was measured
    import dataclasses

    settle = dataclasses.replace(load_recipe("hgq"), hgq=dataclasses.replace(
        load_recipe("hgq").hgq, beta_adjust="step", settle_epochs=5, target_ebops=1000.0))  # settle: epochs - 1 = 1
    res2 = qat_finetune(ck, settle, tr, va, QATConfig(epochs=2, batch_size=16, calib_batches=2), progress=False)
    h = res2.history
    assert [e["phase"] for e in h[1:]] == ["compress", "settle"] and h[2]["beta"] == 0.0
    assert h[1]["beta_end"] > h[1]["beta"]  # per-step growth above the target
    assert h[2]["pruned"] >= h[1]["pruned"]  # nothing pruned comes back while settling
    assert res2.hgq["ebops_final"] == h[res2.hgq["selected_epoch"]]["ebops"]
    # the saved QAT checkpoint (recipe with its hgq section) rebuilds the same model
    torch.save(qat_checkpoint(res, QATConfig(epochs=1)), tmp_path / "qat.pt")
    loaded = load_qat_tagger(tmp_path / "qat.pt")
    again = loaded.model
    assert loaded.recipe.hgq == res.recipe.hgq and hgq.ebops_exact(again) == res.hgq["ebops_final"]
    x = tuple(torch.as_tensor(v[:32]) for v in feed.values())
    with torch.no_grad():
        assert torch.equal(again(*x), q(*x))


def test_collapse_to_chance_is_said():
    assert hgq.collapse_warning(0.20, 5, 8e4).startswith("the kept epoch's validation accuracy 0.2000 is at chance")
    assert "80000 EBOPs is below" in hgq.collapse_warning(0.215, 5, 8e4)
    assert hgq.collapse_warning(0.25, 5, 8e4) is None and hgq.collapse_warning(0.36, 3, 1e5) is None
