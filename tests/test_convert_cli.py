"""`l1tagger convert` / `l1tagger csim` commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

from l1tagger.cli import main


@pytest.fixture()
def block_onnx(tmp_path):
    from l1tagger.verify.graphs import attention_block, random_inputs, save

    save(attention_block(topk=2), tmp_path / "m.onnx")
    np.savez(tmp_path / "tb.npz", **random_inputs(50, 6, 4))
    return tmp_path


def test_help_is_useful(capsys):
    for cmd in ("convert", "csim"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        out = capsys.readouterr().out
        assert "Example" in out and "bit" in out


def test_convert_command_writes_project(block_onnx, capsys):
    d = block_onnx
    rc = main(["convert", str(d / "m.onnx"), "--out", str(d / "prj"), "--inputs", str(d / "tb.npz"),
               "--n-jets", "20"])
    assert rc == 0
    man = json.loads((d / "prj" / "manifest.json").read_text())
    assert man["tb_data"]["n_jets"] == 20 and man["source"]["tb_inputs"].endswith("tb.npz")
    assert set(np.load(d / "prj" / "tb_data" / "reference.npz").files) == {"out"}


def test_commands_fail_cleanly(block_onnx, capsys):
    d = block_onnx
    assert main(["convert", str(d / "missing.onnx"), "--out", str(d / "p")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["csim", str(d)]) == 1
    assert "not an l1tagger HLS project" in capsys.readouterr().err
    assert main(["convert", str(d / "m.onnx"), "--out", str(d / "p"), "--inputs", str(d / "nope.npz")]) == 1


@pytest.mark.slow
def test_csim_command_detects_a_wrong_reference(block_onnx, capsys):
    d = block_onnx
    assert main(["convert", str(d / "m.onnx"), "--out", str(d / "prj"), "--inputs", str(d / "tb.npz")]) == 0
    assert main(["csim", str(d / "prj")]) == 0
    res = json.loads((d / "prj" / "csim" / "result.json").read_text())
    assert res["bit_exact"] and res["n_jets"] == 50
    ref = dict(np.load(d / "prj" / "tb_data" / "reference.npz"))
    ref["out"][3, 0, 0] += 2.0**-5
    np.savez(d / "prj" / "tb_data" / "reference.npz", **ref)
    assert main(["csim", str(d / "prj")]) == 3
    res = json.loads((d / "prj" / "csim" / "result.json").read_text())
    assert res["mismatching_values"] == 1 and res["mismatching_jets"] == 1 and not res["bit_exact"]
