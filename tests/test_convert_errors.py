"""The converter refuses what it cannot map, naming the op / node / problem (no compile needed)."""

from __future__ import annotations

import numpy as np
import pytest

from l1tagger.errors import ConversionError, L1TaggerError


def _block(**kw):
    from l1tagger.verify.graphs import attention_block

    return attention_block(**kw)


def _build(model, tmp_path):
    from l1tagger.convert import build_hls_model

    return build_hls_model(model, tmp_path / "prj")


def test_unknown_op_is_named(tmp_path):
    m = _block()
    node = next(n for n in m.graph.node if n.op_type == "Identity")
    node.op_type = "Sigmoid"
    node.name = "my_sigmoid"
    with pytest.raises(ConversionError, match=r"'Sigmoid'.*'my_sigmoid'"):
        _build(m, tmp_path)


def test_non_power_of_two_scale(tmp_path):
    from onnx import numpy_helper

    m = _block()
    q = next(n for n in m.graph.node if n.op_type == "Quant" and n.input[0] == "x")
    init = next(i for i in m.graph.initializer if i.name == q.input[1])
    init.CopyFrom(numpy_helper.from_array(np.asarray(0.3, np.float32), q.input[1]))
    with pytest.raises(ConversionError, match=rf"{q.name}.*power of two"):
        _build(m, tmp_path)


def test_softmax_input_off_spec_grid(tmp_path):
    from onnx import numpy_helper

    m = _block()
    sm = next(n for n in m.graph.node if n.op_type == "FirmwareSoftmax")
    q = next(n for n in m.graph.node if n.output[0] == sm.input[0])
    init = next(i for i in m.graph.initializer if i.name == q.input[1])
    init.CopyFrom(numpy_helper.from_array(np.asarray(2.0**-5, np.float32), q.input[1]))
    with pytest.raises(ConversionError, match="FirmwareSoftmax.*logit grid"):
        _build(m, tmp_path)


def test_missing_file_and_bad_backend(tmp_path):
    from l1tagger.convert import ConvertConfig, convert

    with pytest.raises(ConversionError, match="does not exist"):
        convert(tmp_path / "nope.onnx", tmp_path / "prj")
    with pytest.raises(ConversionError, match="backend"):
        ConvertConfig(backend="Quartus")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(L1TaggerError):
        convert(tmp_path / "junk.onnx", tmp_path / "prj")


def test_floor_rounding_maps_to_truncation(tmp_path):
    from l1tagger.convert.frontend import build_layer_list

    fe = build_layer_list(_block(rounding="FLOOR"))
    quants = [layer for layer in fe.layers if layer["class_name"] == "L1Quant"]
    assert quants and not any("AP_RND" in q["l1"]["types"]["mid_t"] for q in quants)  # FLOOR = truncation
    assert fe.input_types["x"]["round"] == "TRN"


def test_vivado_backend_and_project_files(tmp_path):
    from l1tagger.convert import convert
    from l1tagger.verify.graphs import random_inputs, save

    m = _block()
    save(m, tmp_path / "m.onnx")
    convert(tmp_path / "m.onnx", tmp_path / "prj", backend="Vivado", clock=4.0,
            tb_inputs=random_inputs(8, 6, 4), n_tb=8, source={"recipe": "test"})
    import json

    man = json.loads((tmp_path / "prj" / "manifest.json").read_text())
    assert man["config"]["backend"] == "Vivado" and man["config"]["clock_ns"] == 4.0
    assert man["source"]["recipe"] == "test" and man["tb_data"]["n_jets"] == 8
    assert man["versions"]["hls4ml"] == "1.3.0"
    assert "firmware/myproject.cpp" in man["files"] and "tb_data/reference.npz" in man["files"]
    assert man["softmax"][0]["topk"] == 0 and len(man["softmax"][0]["table_digest"]) == 64
    assert (tmp_path / "prj" / "build_prj.tcl").is_file()
    lines = (tmp_path / "prj" / "tb_data" / "tb_input_features.dat").read_text().splitlines()
    assert len(lines) == 8 and len(lines[0].split()) == 6 * 4 + 6


def test_malformed_node_is_named(tmp_path):
    m = _block()
    tr = next(n for n in m.graph.node if n.op_type == "Transpose")
    for a in tr.attribute:
        if a.name == "perm":
            del a.ints[:]
            a.ints.extend([0, 1])  # wrong rank
    with pytest.raises(ConversionError, match=tr.name):
        _build(m, tmp_path)
