"""Bit-exact C simulation of real exported taggers: every attention kind x two recipes, 1000 jets each (slow).

Each case: tiny Brevitas model (N=8, 1 block, 2 heads, d=8, interaction bias U) -> QONNX export (batch 1) ->
l1tagger.convert -> g++ -> traced C simulation of 1000 toy jets vs the QONNX reference: zero differing values in
the outputs and in every traced layer. One g++ build per case (shared CPU: run with -m slow by hand).
"""

from __future__ import annotations

import pytest

ATTENTIONS = ("full", "linformer", "topk")
RECIPES = ("quantize/int8.yaml", "quantize/int6_floor.yaml")


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_csim_bit_exact_1000_jets(attention, recipe, tmp_path):
    import torch

    from l1tagger.convert import convert
    from l1tagger.export.examples import example_model, tiny_config, toy_inputs
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.verify.csim import run_csim

    torch.set_num_threads(1)
    cfg = tiny_config(attention)
    inputs = toy_inputs(cfg, 1000, seed=3)
    _, qmodel, _ = example_model(attention, recipe, inputs)
    feed = {k: inputs[k] for k in ("x", "mask", "pair")}
    onnx_path = tmp_path / "model.onnx"
    export_qonnx_model(qmodel, tuple(torch.as_tensor(feed[k][:1]) for k in ("x", "mask", "pair")), onnx_path)
    convert(onnx_path, tmp_path / "prj", tb_inputs=feed, n_tb=1000, source={"recipe": recipe})
    res = run_csim(tmp_path / "prj")
    assert res.n_jets == 1000
    assert res.mismatching_values == 0, res.first_mismatch
    assert res.first_mismatch is None
    assert res.bit_exact
    assert res.layers_compared > 50
