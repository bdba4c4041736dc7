"""QuantOps twins: load the float weights, every quantizer output on a power-of-two grid, QAT gradients flow."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from l1tagger.errors import ConfigError, ExportError
from l1tagger.export.examples import example_model, tiny_config, toy_inputs
from l1tagger.models import build_model
from l1tagger.qat.ops import QuantOps, load_float_state_dict

RECIPES = Path(__file__).resolve().parents[1] / "quantize"
torch.set_num_threads(1)


def _is_po2(x: float) -> bool:
    return x > 0 and math.frexp(x)[0] == 0.5


@pytest.fixture(scope="module")
def inputs():
    return toy_inputs(tiny_config("full"), 128, seed=3)


def _args(inputs, n=128):
    return tuple(torch.as_tensor(inputs[k][:n]) for k in ("x", "mask", "pair"))


@pytest.mark.parametrize("attention", ["full", "linformer", "topk"])
def test_twin_loads_float_weights_and_tensors_on_grid(attention, inputs):
    fmodel, qmodel, _ = example_model(attention, RECIPES / "int8.yaml", inputs)
    fsd, qsd = fmodel.state_dict(), qmodel.state_dict()
    for k, v in fsd.items():
        assert torch.equal(v, qsd[k]), k
    # every activation quantizer output is an integer multiple of its power-of-two scale, within its range
    seen = []

    def hook(mod, _inp, out):
        proxy = getattr(mod, "act_quant", None) or getattr(mod, "output_quant", None)
        s = float(proxy.scale())
        assert _is_po2(s), (mod, s)
        q = out.detach().double() / s
        assert torch.equal(q, torch.round(q)), mod
        b = int(proxy.bit_width())
        assert q.abs().max() <= 2**b
        seen.append(mod)

    from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU

    hs = [m.register_forward_hook(hook) for m in qmodel.modules() if isinstance(m, (QuantIdentity, QuantLinear, QuantReLU))]
    with torch.no_grad():
        logits = qmodel(*_args(inputs))
    for h in hs:
        h.remove()
    assert len(seen) > 20 and torch.isfinite(logits).all()
    # weights quantized with power-of-two scales
    for m in qmodel.modules():
        if isinstance(m, QuantLinear):
            assert _is_po2(float(m.quant_weight().scale))


def test_quantized_close_to_float_at_8_bits(inputs):
    fmodel, qmodel, _ = example_model("full", RECIPES / "int8.yaml", inputs)
    with torch.no_grad():
        pf = torch.softmax(fmodel(*_args(inputs)), -1)
        pq = torch.softmax(qmodel(*_args(inputs)), -1)
    assert (pf - pq).abs().mean() < 0.05


def test_qat_step_updates_weights_and_keeps_bit_exact_forward(inputs):
    _, qmodel, _ = example_model("topk", RECIPES / "int8_floor.yaml", inputs)
    qmodel.train()
    opt = torch.optim.Adam(qmodel.parameters(), lr=1e-2)
    y = torch.as_tensor(inputs["labels"][:128])
    losses = []
    w0 = qmodel.head_fc2.weight.detach().clone()
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(qmodel(*_args(inputs)), y)
        opt.zero_grad()
        loss.backward()
        g = qmodel.blocks[0].heads[0].q.weight.grad
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0  # STE through the softmax
        opt.step()
        losses.append(float(loss))
    assert not torch.equal(w0, qmodel.head_fc2.weight)
    assert min(losses[-3:]) < losses[0]


def test_state_dict_mismatch_is_named():
    qmodel = build_model(tiny_config("full"), ops=QuantOps(RECIPES / "int8.yaml"))
    other = build_model(tiny_config("linformer")).state_dict()
    with pytest.raises(ConfigError, match="lacks|shape"):
        load_float_state_dict(qmodel, other)


def test_unsupported_op_fails_at_export_with_its_name():
    from brevitas.nn import QuantIdentity

    from l1tagger.export.export import export_qonnx_model
    from l1tagger.qat.ops import _act
    from l1tagger.qat.recipe import QuantSpec

    class Bad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q = _act(QuantSpec("Int8ActPerTensorFixedPoint", 8, 4), "ROUND")

        def forward(self, x, mask):
            return self.q(torch.sigmoid(self.q(x)) * mask.unsqueeze(-1))

    with pytest.raises(ExportError, match="Sigmoid"):
        export_qonnx_model(Bad().eval(), (torch.zeros(1, 4, 3), torch.ones(1, 4)))


@pytest.mark.parametrize("recipe", ["int8", "hgq_budget"])
def test_pair_mask_is_a_two_bit_zero_one_grid_whatever_the_recipe(recipe):
    """Linformer + U multiplies U by the pair mask: that mask is a product of two 0/1 masks on a constant unsigned
    scale-1 grid (mask_mul), so U x mask costs bits(U) x 2, not bits(U) x the recipe's activation width."""
    from l1tagger.models import ModelConfig
    from l1tagger.qat import hgq
    from l1tagger.qat.ops import MASK_BITS
    from l1tagger.qat.recipe import load_recipe

    r = load_recipe(recipe)
    cfg = ModelConfig(n_particles=8, n_classes=3, attention="linformer", pair_bias=True, d_model=8, n_heads=2,
                      ffn_dim=8, embed_dim=8, head_dim=8, pair_hidden=4, linformer_k=4, features="l1")
    q = build_model(cfg, ops=QuantOps(r)).eval()
    if r.hgq is not None:
        hgq.attach_hgq(q, r.hgq)
    out = q.pair_mask.out.act_quant  # QuantIdentity's proxy
    assert int(out.bit_width()) == MASK_BITS == 2 and not out.is_signed and float(out.scale()) == 1.0
    terms = {t.module: t for t in hgq.cost_graph(q).terms}
    per_layer = hgq.ebops_exact(q, per_layer=True)
    u_bits = 8  # the recipes' starting activation width of U
    t = terms["blocks.0.heads.0.umask"]
    assert per_layer["blocks.0.heads.0.umask"] == t.count * u_bits * MASK_BITS
    # the mask product itself: two 0/1 graph masks, 1 bit each
    assert per_layer["pair_mask"] == terms["pair_mask"].count
