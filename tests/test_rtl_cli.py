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
