"""Budget presets: strict loading, units, derived II/latency budgets."""

import copy

import pytest
import yaml

from l1tagger.errors import ConfigError
from l1tagger.report.budgets import budgets_dir, list_presets, load_budget, parse_budget


def raw(name="cms_phase2_tmux6_360mhz"):
    return yaml.safe_load((budgets_dir() / f"{name}.yaml").read_text())


def test_presets_exist_and_load():
    assert {"cms_phase2_tmux6_360mhz", "cms_phase2_tmux6_240mhz", "cms_phase2_tmux6_360mhz_vu9p"} <= set(list_presets())
    for name in list_presets():
        b = load_budget(name)
        assert b.sources and b.rationale


def test_cms_360_numbers():
    b = load_budget("cms_phase2_tmux6_360mhz")
    assert b.ii_cycles == 54 and b.ii_ns == pytest.approx(150.0)
    assert b.latency_ns == 1000.0 and b.latency_cycles == 360
    assert b.allowed("lut") == 1728000 / 4 and b.allowed("bram") == 5376 / 4
    assert load_budget("cms_phase2_tmux6_240mhz").ii_cycles == 36


def test_bram36_unit_converts_to_bram18():
    b = load_budget("cms_phase2_tmux6_360mhz_vu9p")
    assert b.device.totals["bram"].base == 2 * 2160


def test_user_file(tmp_path):
    r = raw()
    r["name"] = "mine"
    r["latency"] = {"value": 500, "unit": "ns"}
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump(r))
    assert load_budget(p).latency_ns == 500


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r.update(latenccy=r["latency"]), "latenccy"),
    (lambda r: r["latency"].pop("unit"), "latency"),
    (lambda r: r["clock"].update(unit="furlongs"), "clock"),
    (lambda r: r["clock"].update(unit="ns"), "clock"),  # wrong dimension
    (lambda r: r["device"]["totals"]["lut"].pop("unit"), "device.totals.lut"),
    (lambda r: r["device"]["totals"].update(lutz={"value": 1, "unit": "LUT"}), "device.totals.lutz"),
    (lambda r: r["device"].update(colour="red"), "device.colour"),
    (lambda r: r.pop("rationale"), "rationale"),
    (lambda r: r.update(tmux=0), "tmux"),
    (lambda r: r.update(share={"value": 2, "unit": "fraction"}), "share"),
    (lambda r: r["latency"].update(value="fast"), "latency"),
])
def test_bad_files_name_the_field(mutate, field):
    r = copy.deepcopy(raw())
    mutate(r)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_budget(r)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="no such preset"):
        load_budget("lhc_run5_dreams")
