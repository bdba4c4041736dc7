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
