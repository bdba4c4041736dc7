"""Every heterogeneous (HGQ) recipe stays bit-exact for every attention kind, through every route.

For each HGQ preset (``hgq``, ``hgq_small``, ``hgq_budget``, ``hgq_lean``) and each attention kind (full + U, Linformer + U, top-k +
U): a tiny model is trained, fine-tuned with the recipe (per-weight widths, trainable activation widths, the EBOPs
penalty), baked and exported to QONNX; then, on the same test-bench jets,

* the QONNX graph (qonnx execution) equals the Brevitas model bit for bit (``export.crosscheck``),
* the open RTL route's da4ml program equals the QONNX integer reference (da4ml's C++ interpreter),
* the hls4ml C simulation equals the QONNX reference on every traced layer.

By default 200 jets per check, and the C simulation (a g++ build each) for one recipe per kind, rotated so every
recipe and every kind is C-simulated once; the ``slow`` variant checks 1000 jets and C-simulates all twelve pairs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l1tagger.qat.recipe import load_recipe
from l1tagger.resources import resolve_recipe

KINDS = ("full", "linformer", "topk")
RECIPES = ("hgq", "hgq_small", "hgq_budget", "hgq_lean")
#: the default run C-simulates these (every kind once, every recipe once)
CSIM_BY_DEFAULT = {("full", "hgq"), ("linformer", "hgq_budget"), ("topk", "hgq_small"), ("linformer", "hgq_lean")}


@pytest.fixture(scope="module")
def jets():
    from l1tagger.data.synthetic import toy_jets

    return toy_jets(n_jets=1300, max_particles=8, n_classes=3, seed=5)


@pytest.fixture(scope="module")
def float_models(jets, tmp_path_factory):
    """One float model per attention kind (shared by the recipes)."""
    from l1tagger.models import ModelConfig
    from l1tagger.training import TrainConfig, train

    tr, va = jets.subset(np.arange(200)), jets.subset(np.arange(200, 300))
    out = {}
    for kind in KINDS:
        mc = ModelConfig(n_particles=8, features="l1", n_classes=3, d_model=8, n_heads=2, ffn_dim=8, embed_dim=8,
                         head_dim=8, pair_hidden=4, attention=kind, linformer_k=3, topk_k=3)
        out[kind] = train(TrainConfig(model=mc, epochs=1, batch_size=64, lr=5e-3), tr, va,
                          tmp_path_factory.mktemp(f"float_{kind}"), progress=False)
    return out


def _check(kind, recipe_name, n_jets, csim, jets, float_models, tmp_path):
    from l1tagger.convert import convert
    from l1tagger.export.crosscheck import crosscheck
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.features.inputs import build_inputs
    from l1tagger.qat import hgq
    from l1tagger.qat.finetune import QATConfig, qat_finetune
    from l1tagger.rtl.flow import run_rtl_flow
    from l1tagger.verify.csim import run_csim

    tr, va = jets.subset(np.arange(200)), jets.subset(np.arange(200, 300))
    bench = jets.subset(np.arange(300, 300 + n_jets))
    recipe = load_recipe(resolve_recipe(recipe_name))
    # a target below the start so the penalty acts (hgq_budget: the target a run would derive from its budget)
    res = qat_finetune(float_models[kind], recipe, tr, va,
                       QATConfig(epochs=1, batch_size=16, calib_batches=2, target_ebops=2e4), progress=False)
    assert res.hgq is not None and res.hgq["ebops_final"] < res.hgq["ebops_start"]
    q = res.model.eval()
    assert not hgq.is_hgq(q)  # baked: plain constants on their own grids
    feed = build_inputs(bench, res.tagger.model_config, res.tagger.scaler)[0].graph_feed()
    onnx_path = tmp_path / "m.onnx"
    w = export_qonnx_model(q, tuple(torch.as_tensor(v[:1]) for v in feed.values()), onnx_path)

    check = crosscheck(q, w, feed)
    assert check.n_jets == n_jets and check.ok, (kind, recipe_name, check.first_mismatch)

    s = run_rtl_flow(onnx_path, tmp_path / "rtl", interp=True, inputs=feed, n_jets=n_jets, progress=False)
    assert s["interp"]["n_jets"] == n_jets
    assert s["interp"]["n_mismatches"] == 0 and s["interp"]["bit_exact"], (kind, recipe_name,
                                                                             s["interp"]["first_mismatch"])
    if csim:
        convert(onnx_path, tmp_path / "prj", tb_inputs=feed, n_tb=n_jets)
        r = run_csim(tmp_path / "prj")
        assert r.n_jets == n_jets
        assert r.mismatching_values == 0 and r.bit_exact, (kind, recipe_name, r.first_mismatch)


@pytest.mark.parametrize("recipe_name", RECIPES)
@pytest.mark.parametrize("kind", KINDS)
def test_hgq_recipe_bit_exact_200_jets(kind, recipe_name, jets, float_models, tmp_path):
    _check(kind, recipe_name, 200, (kind, recipe_name) in CSIM_BY_DEFAULT, jets, float_models, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("recipe_name", RECIPES)
@pytest.mark.parametrize("kind", KINDS)
def test_hgq_recipe_bit_exact_1000_jets(kind, recipe_name, jets, float_models, tmp_path):
    _check(kind, recipe_name, 1000, True, jets, float_models, tmp_path)
