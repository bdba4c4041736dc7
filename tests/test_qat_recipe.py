"""Recipes: every shipped recipe parses; typos and impossible widths fail with the field named."""

from pathlib import Path

import pytest
import yaml

from l1tagger.errors import ConfigError
from l1tagger.qat.recipe import load_recipe, parse_recipe

RECIPES = Path(__file__).resolve().parents[1] / "quantize"


def _base():
    return yaml.safe_load((RECIPES / "int8.yaml").read_text())


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_recipes_parse(path):
    r = load_recipe(path)
    assert r.name == path.stem
    assert r.rounding in ("half_even", "floor")
    assert r.kinds["input"].frac is not None
    spec = r.softmax.spec()
    assert spec.exp_table_covers_input and spec.exp_table_saturates
    if path.stem.endswith("_floor"):
        assert r.act_rounding_mode == "FLOOR" and spec.rounding == "floor"


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(wieght=d.pop("weight")), "wieght"),
        (lambda d: d["weight"].update(bits=1), "weight.bits"),
        (lambda d: d["act"].update(bits=40), "act.bits"),
        (lambda d: d["act"].update(bitz=8), "act.bitz"),
        (lambda d: d["weight"].update(quantizer="Int8WeightPerTensorFloat"), "weight.quantizer"),
        (lambda d: d["weight"].update(quantizer="Int8ActPerTensorFixedPoint"), "weight.quantizer"),
        (lambda d: d["relu"].update(bits="8"), "relu.bits"),
        (lambda d: d.update(rounding="half_up"), "rounding"),
        (lambda d: d["softmax"].update(in_bits=1), "softmax.in_bits"),
        (lambda d: d["softmax"].update(rounding="nearest"), "softmax.rounding"),
        (lambda d: d["softmax"].update(tables={"exp_fracc": 3}), "softmax.tables.exp_fracc"),
        (lambda d: d["softmax"].update(tables={"exp_frac": 0}), "exp_frac"),
        (lambda d: d["input"].pop("frac"), "input.frac"),
        (lambda d: d.update(overrides={"blocks.0.ffn.fc1": {"wieght": {"bits": 4}}}), "overrides.blocks.0.ffn.fc1.wieght"),
        (lambda d: d.update(overrides={"head.fc2": {"output": {"bits": 99}}}), "overrides.head.fc2.output.bits"),
        (lambda d: d.pop("bias"), "bias"),
        (lambda d: d["softmax"].update(fit_rows="yes"), "softmax.fit_rows"),
        (lambda d: d["softmax"].update(guard_bits=9), "softmax.guard_bits"),
    ],
)
def test_recipe_errors_name_the_field(mutate, field):
    d = _base()
    mutate(d)
    with pytest.raises(ConfigError) as exc:
        parse_recipe(d)
    assert field in str(exc.value)


def test_overrides_apply_and_unknown_layer_is_reported():
    from l1tagger.export.examples import tiny_config
    from l1tagger.models import build_model
    from l1tagger.qat.ops import QuantOps

    d = _base()
    d["overrides"] = {"head.fc2": {"weight": {"bits": 4}, "output": {"bits": 12}},
                      "blocks.0.attn.h0.softmax": {"softmax": {"out_bits": 10}}}
    ops = QuantOps(parse_recipe(d))
    m = build_model(tiny_config("full"), ops=ops)
    ops.check_overrides_used()
    assert m.head_fc2.weight_quant.bit_width() == 4
    assert m.head_fc2.output_quant.bit_width() == 12
    assert m.blocks[0].heads[0].softmax.spec.out_bits == 10
    assert m.blocks[0].heads[1].softmax.spec.out_bits == 8

    d["overrides"] = {"head.fc3": {"weight": {"bits": 4}}}
    ops = QuantOps(parse_recipe(d))
    build_model(tiny_config("full"), ops=ops)
    with pytest.raises(ConfigError, match="head.fc3"):
        ops.check_overrides_used()


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_recipe(p)


def test_fit_rows_sizes_each_softmax_to_its_own_sum():
    """hgq_lean (fit_rows): the Linformer's attention softmax is sized to its k projected keys, the class-attention
    pooling to the N particles, top-k's to its k kept keys; without fit_rows every softmax is sized to max_keys. A
    row whose sum holds more terms than its spec covers is refused, naming the layer."""
    import torch

    from l1tagger.models import ModelConfig, build_model
    from l1tagger.qat.ops import QuantOps
    from l1tagger.resources import resolve_recipe

    def specs(recipe, attention):
        cfg = ModelConfig(n_particles=16, features="l1", n_classes=3, d_model=8, n_heads=2, ffn_dim=8, embed_dim=8,
                          head_dim=8, pair_hidden=4, attention=attention, linformer_k=4, topk_k=3)
        ops = QuantOps(resolve_recipe(recipe))
        model = build_model(cfg, ops=ops)
        return ops.softmax_specs, model

    lean = load_recipe(resolve_recipe("hgq_lean")).softmax
    assert lean.fit_rows and lean.guard_bits == 0 and lean.out_bits == 6
    for attention, terms in (("linformer", 4), ("topk", 3), ("full", 16)):
        got, _ = specs("hgq_lean", attention)
        attn = [v for k, v in got.items() if k.startswith("blocks.0.attn.")]
        assert len(attn) == 2 and all(v == lean.spec(terms).to_dict() for v in attn), attention
        pool = [v for k, v in got.items() if k.startswith("cls.")]
        assert len(pool) == 2 and all(v == lean.spec(16).to_dict() for v in pool)
    wide, _ = specs("hgq_budget", "linformer")
    assert all(v == load_recipe(resolve_recipe("hgq_budget")).softmax.spec().to_dict() for v in wide.values())
    assert lean.spec(4).inv_table_bits < lean.spec(64).inv_table_bits
    _, model = specs("hgq_lean", "linformer")
    sm = model.blocks[0].heads[0].softmax
    with pytest.raises(ConfigError, match="attn.h0.softmax' sums 5 keys per row but its spec covers 4"):
        sm(torch.zeros(1, 2, 16, 5))
    d = parse_recipe(load_recipe(resolve_recipe("hgq_lean")).to_dict()).softmax  # round trip
    assert d == lean
