"""Budget-driven runs: the EBOPs target of an HGQ recipe follows from the budget unless given (precedence
qat.target_ebops > the recipe's number > the budget), the report shows the trade-off the QAT found, and a budget no
model reaches ends the run with an error naming the smallest cost reached, after every artifact is written."""

import json

import pytest
import torch

from l1tagger.cli import main
from l1tagger.errors import ConfigError
from l1tagger.pipeline.config import RunConfig
from l1tagger.qat.finetune import QATConfig, qat_finetune
from l1tagger.qat.hgq import BUDGET_EBOPS_FRACTION, target_from_budget
from l1tagger.qat.recipe import HGQConfig, load_recipe, parse_recipe
from l1tagger.resources import budgets_dir

torch.set_num_threads(1)


def test_target_precedence_qat_then_recipe_then_budget():
    budget = RunConfig(recipe="hgq_budget").hgq_target
    assert budget["source"] == "budget" and budget["target_ebops"] == round(BUDGET_EBOPS_FRACTION * 432_000)
    assert "432,000 LUT" in budget["detail"] and "no DSP term" in budget["detail"]
    small = RunConfig(recipe="hgq_budget", budget="cms_phase2_tmux6_360mhz_vu9p").hgq_target
    assert small["target_ebops"] < budget["target_ebops"]  # a VU9P SLR has fewer LUTs
    recipe = RunConfig(recipe="hgq").hgq_target
    assert recipe == {"target_ebops": 4.0e5, "source": "recipe", "detail": "hgq.target_ebops of hgq"}
    for name in ("hgq", "hgq_budget"):
        given = RunConfig(recipe=name, qat=QATConfig(target_ebops=1.5e5)).hgq_target
        assert given["target_ebops"] == 1.5e5 and given["source"] == "qat.target_ebops"
    assert RunConfig(recipe="int8").hgq_target is None


def test_budget_target_counts_dsps_only_where_products_may_use_them():
    narrow, wide = HGQConfig(target_ebops=None), HGQConfig(target_ebops=None, act_max_bits=12)
    assert target_from_budget(1000, 10, narrow, 0.5) == 500  # <= 8-bit activations: every product in LUTs
    assert target_from_budget(1000, 10, wide, 0.5) == 0.5 * (1000 + 55 * 10)
    with pytest.raises(ConfigError, match="fraction"):
        target_from_budget(1000, 10, narrow, 1.5)


def test_budget_target_in_a_recipe():
    r = load_recipe("hgq_budget")
    assert r.hgq.target_ebops is None and r.to_dict()["hgq"]["target_ebops"] == "budget"
    assert parse_recipe(r.to_dict()).hgq.target_ebops is None
    bad = r.to_dict()
    bad["hgq"]["target_ebops"] = "bugdet"
    with pytest.raises(ConfigError, match="hgq.target_ebops.*'budget'"):
        parse_recipe(bad)
    # outside a run, a 'budget' recipe needs the target from the QAT config (checked before any work)
    with pytest.raises(ConfigError, match="target_ebops is 'budget'"):
        qat_finetune("no-such-checkpoint.pt", r, None, None, QATConfig(epochs=1))
    with pytest.raises(ConfigError, match="target_ebops"):
        QATConfig(target_ebops=0.0).validate()


def test_dead_activation_calibrates_to_a_power_of_two_and_exports():
    """A ReLU that sees only zeros in calibration (dead) had Brevitas' scale floor 1e-10, not a power of two: the
    export failed. The floor is now the power of two ACT_SCALE_MIN."""
    from l1tagger.export.examples import tiny_config, toy_inputs
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.models import build_model
    from l1tagger.qat.ops import ACT_SCALE_MIN, QuantOps, calibrate, load_float_state_dict

    torch.manual_seed(0)
    cfg = tiny_config("full")
    f = build_model(cfg)
    with torch.no_grad():
        f.embed_fc1.bias.fill_(-100.0)  # every embedding ReLU input negative: the ReLU is dead
    q = build_model(cfg, ops=QuantOps("quantize/int8.yaml"))
    load_float_state_dict(q, f.state_dict())
    inp = toy_inputs(cfg, 64)
    args = tuple(torch.as_tensor(inp[k]) for k in ("x", "mask", "pair"))
    calibrate(q, [args])
    assert float(q.embed_relu.act_quant.scale()) == ACT_SCALE_MIN
    w = export_qonnx_model(q, tuple(a[:1] for a in args))  # ExportError before the fix
    assert any(n.op_type == "Relu" for n in w.graph.node)


@pytest.fixture(scope="module")
def infeasible(tmp_path_factory):
    """A tiny budget-driven run against a budget of 346 LUT (0.02 % of a VU13P): no model reaches it."""
    root = tmp_path_factory.mktemp("budget")
    preset = (budgets_dir() / "cms_phase2_tmux6_360mhz.yaml").read_text()
    assert "share: {value: 0.25," in preset
    budget = root / "tiny_budget.yaml"
    budget.write_text(preset.replace("name: cms_phase2_tmux6_360mhz", "name: tiny_budget")
                      .replace("share: {value: 0.25,", "share: {value: 0.0002,"))
    cfg = root / "tiny.yaml"
    cfg.write_text("\n".join([
        "name: tiny", f"runs_dir: {root / 'runs'}", f"projects_dir: {root / 'hls_projects'}",
        f"data_dir: {root / 'data'}", "dataset: 'toy:300'", "recipe: hgq_budget", f"budget: {budget}",
        "model: {n_particles: 8, d_model: 8, ffn_dim: 8, embed_dim: 8, head_dim: 8, pair_hidden: 4}",
        "train: {epochs: 1}", "qat: {epochs: 2}", "n_csim_jets: 20", ""]))
    return root, cfg


def test_infeasible_budget_fails_naming_the_smallest_cost_and_keeps_the_artifacts(infeasible, capsys):
    root, cfg = infeasible
    assert main(["run", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "budget" in err and "not reached" in err and "LUT" in err
    assert "the smallest cost QAT reached is" in err and "EBOPs (epoch" in err and "target 207" in err
    run = root / "runs" / "tiny"
    for step in ("data", "train", "qat", "convert", "csim", "rtl"):  # completed steps stay done
        assert (run / "steps" / f"{step}.json").is_file(), step
    assert not (run / "steps" / "report.json").exists()  # the failing step is never taken as done
    assert (run / "report.md").is_file() and (run / "qat" / "model.onnx").is_file()
    target = json.loads((run / "qat" / "target.json").read_text())
    assert target["source"] == "budget" and target["target_ebops"] == round(BUDGET_EBOPS_FRACTION * 345.6)
    rep = json.loads((run / "report.json").read_text())
    assert rep["budget_verdict"] == "fail"
    hq = rep["hgq"]
    assert hq["target_source"] == "budget" and [h["epoch"] for h in hq["history"]] == [0, 1, 2]
    assert min(h["ebops"] for h in hq["history"]) == hq["smallest_ebops"]["ebops"]
    assert f"{hq['smallest_ebops']['ebops']:,} EBOPs" in err
    assert "HGQ trade-off: EBOPs vs accuracy per QAT epoch" in (run / "report.md").read_text()
    # da4ml's cost of the same graph, with the RTL step off: lowered, cached in the project, no Verilog written
    d = rep["da4ml_cost"]
    assert d["status"] == "ok" and d["lut"] > 0
    assert (root / "hls_projects" / "tiny" / "da4ml_cost.json").is_file()
    assert not (root / "hls_projects" / "tiny" / "rtl").exists()
    # the benchmarks' flat figures of the run read the same numbers
    from l1tagger.errors import L1TaggerError
    from l1tagger.report.figures import run_figures

    fig = run_figures(run)
    qm = json.loads((run / "qat" / "metrics.json").read_text())["hgq"]
    assert fig["budget_verdict"] == "fail" and fig["fits_budget"] is False and fig["da4ml_lut"] == d["lut"]
    assert fig["ebops"] == qm["ebops_final"] and fig["ebops_source"] == "hgq exact (kept epoch)"
    assert fig["target_source"] == "budget" and fig["csim_jets"] == 20 and fig["csim_bit_exact"] is True
    assert fig["accuracy_qat"] == rep["physics"]["qat"]["accuracy"] and fig["est_lut"] == rep["estimate"]["total"]["lut"]
    with pytest.raises(L1TaggerError, match="no report.json"):
        run_figures(root / "runs")


def test_rerun_of_an_infeasible_budget_redoes_only_the_report(infeasible, capsys):
    root, cfg = infeasible
    assert main(["run", str(cfg)]) == 1
    out = capsys.readouterr()
    assert out.out.count("up to date") == 6 and "not reached" in out.err
