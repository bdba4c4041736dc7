"""Report parsers on texts following the vendor tools' formats (tests/data/reports/)."""

from pathlib import Path

import pytest

from l1tagger.errors import ReportParseError
from l1tagger.report import parsers as P

D = Path(__file__).parent / "data" / "reports"


def read(name):
    return (D / name).read_text()


def test_vitis_csynth_rpt():
    r = P.parse_csynth_rpt(read("myproject_csynth.rpt"))
    assert r.source == "vitis_hls" and r.top == "myproject" and r.part == "xcvu13p-flga2577-2-e"
    assert (r.latency_best_cycles, r.latency_worst_cycles, r.ii_min, r.ii_max) == (37, 37, 1, 1)
    assert r.latency_worst_ns == pytest.approx(102.86)
    assert r.target_clock_ns == 2.78 and r.estimated_clock_ns == 2.431
    assert r.achieved_clock_mhz == pytest.approx(1000 / 2.431)
    assert r.resources["lut"].used == 23512 and r.resources["lut"].available == 1728000  # whole device, not SLR
    assert r.resources["dsp"].used == 64 and r.resources["bram"].used == 4 and r.resources["uram"].available == 1280


def test_old_vivado_hls_format():
    r = P.parse_csynth_rpt(read("vivado_hls_2018_csynth.rpt"))
    assert r.latency_worst_cycles == 9 and r.latency_worst_ns == pytest.approx(45.0)
    assert r.resources["dsp"].used == 250 and r.resources["dsp"].available == 6840  # DSP48E column
    assert "uram" not in r.resources


def test_xml_agrees_with_rpt():
    x, t = P.parse_csynth_xml(read("myproject_csynth.xml")), P.parse_csynth_rpt(read("myproject_csynth.rpt"))
    assert x.latency_worst_cycles == t.latency_worst_cycles and x.ii_max == t.ii_max
    assert x.latency_worst_ns == pytest.approx(103.0)  # "0.103 us"
    assert {k: v.used for k, v in x.resources.items()} == {k: v.used for k, v in t.resources.items()}


def test_vivado_utilization_and_timing():
    u = P.parse_vivado_utilization(read("vivado_utilization.rpt"))
    assert u.resources["lut"].used == 21873 and u.resources["ff"].used == 12011
    assert u.resources["bram"].used == 3 and u.resources["bram"].available == 5376  # 1.5 tiles -> 3 BRAM18
    assert u.resources["dsp"].used == 64 and u.resources["uram"].used == 0
    t = P.parse_vivado_timing_summary(read("vivado_timing_summary.rpt"))
    assert t.wns_ns == 0.412 and t.target_clock_ns == 2.778
    assert t.estimated_clock_ns == pytest.approx(2.366) and t.achieved_clock_mhz == pytest.approx(1000 / 2.366)
    m = P.merge(u, t)
    assert m.resources["lut"].used == 21873 and m.wns_ns == 0.412 and m.part == "xcvu13p-flga2577-2-e"


def test_negative_wns_means_slower_clock():
    text = read("vivado_timing_summary.rpt").replace("      0.412        0.000", "     -0.250       -12.5")
    t = P.parse_vivado_timing_summary(text)
    assert t.estimated_clock_ns == pytest.approx(3.028) and t.achieved_clock_mhz < 360


@pytest.mark.parametrize("name, parser, cut, match", [
    ("myproject_csynth.rpt", P.parse_csynth_rpt, "== Utilization Estimates", "Utilization Estimates"),
    ("myproject_csynth.rpt", P.parse_csynth_rpt, "|Total ", "Total"),
    ("myproject_csynth.rpt", P.parse_csynth_rpt, "+ Latency", "Latency"),
    ("myproject_csynth.xml", P.parse_csynth_xml, "<AreaEstimates>", "XML"),
    ("vivado_utilization.rpt", P.parse_vivado_utilization, "2. BLOCKRAM\n---", "Block RAM Tile"),
    ("vivado_timing_summary.rpt", P.parse_vivado_timing_summary, "Clock Summary", "Clock Summary"),
    ("vivado_timing_summary.rpt", P.parse_vivado_timing_summary, "    -------      -------", "WNS"),
])
def test_truncated_reports_raise_clear_errors(name, parser, cut, match):
    text = read(name)
    assert cut in text
    with pytest.raises(ReportParseError, match=match):
        parser(text[: text.index(cut)])


def test_malformed_inputs():
    with pytest.raises(ReportParseError, match="header"):
        P.parse_csynth_rpt("hello world")
    with pytest.raises(ReportParseError, match="undetermined"):
        P.parse_csynth_rpt(read("myproject_csynth.rpt").replace("|       37|       37|", "|        ?|        ?|"))
    with pytest.raises(ReportParseError, match="DOCTYPE"):
        P.parse_csynth_xml('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><profile/>')
    with pytest.raises(ReportParseError, match="TargetClockPeriod"):
        P.parse_csynth_xml(read("myproject_csynth.xml").replace("<TargetClockPeriod>2.78</TargetClockPeriod>", ""))


def test_round_trip_dict():
    r = P.parse_csynth_rpt(read("myproject_csynth.rpt"))
    assert P.SynthesisReport.from_dict(r.to_dict()) == r
    for rep in (P.parse_csynth_xml(read("myproject_csynth.xml")),
                P.parse_csynth_rpt(read("vivado_hls_2018_csynth.rpt")),
                P.merge(P.parse_vivado_utilization(read("vivado_utilization.rpt")),
                        P.parse_vivado_timing_summary(read("vivado_timing_summary.rpt")))):
        assert P.SynthesisReport.from_dict(rep.to_dict()) == rep


def test_from_dict_is_strict_and_names_the_field():
    """Issue 13.4: SynthesisReport.from_dict goes through the one strict loader: a mistyped, unknown or missing field
    raises ReportParseError naming the dotted field (a misspelt resource key or a string count used to load)."""
    good = P.parse_csynth_rpt(read("myproject_csynth.rpt")).to_dict()
    for change, message in (
            (lambda d: d["resources"]["lut"].update(usd=1), r"resources\.lut\.usd: unknown key"),
            (lambda d: d["resources"]["dsp"].update(used="64"), r"resources\.dsp\.used: expected float, got str"),
            (lambda d: d["resources"]["bram"].pop("used"), r"resources\.bram\.used: missing"),
            (lambda d: d.update(ii_min=1.5), r"ii_min: expected int"),
            (lambda d: d.update(latency="37"), r"latency: unknown key"),
            (lambda d: d.pop("source"), r"source: missing"),
    ):
        bad = P.SynthesisReport.from_dict(good).to_dict()
        change(bad)
        with pytest.raises(ReportParseError, match=r"^synthesis summary: " + message):
            P.SynthesisReport.from_dict(bad)
