"""Bit-exactness for each attention twin (+U): Brevitas == QONNX reference == integer emulation, 1000 toy jets."""

from pathlib import Path

import pytest
import torch
from onnx import helper

from l1tagger.export.examples import verify_example

RECIPES = Path(__file__).resolve().parents[1] / "quantize"


@pytest.mark.parametrize("recipe", ["int8", "int6_floor"])
@pytest.mark.parametrize("kind", ["full", "linformer", "topk"])
def test_bit_exact_on_1000_jets(kind, recipe, tmp_path):
    torch.set_num_threads(1)
    check, w = verify_example(kind, RECIPES / f"{recipe}.yaml", n_jets=1000, path=tmp_path / "m.onnx")
    assert check.n_jets == 1000
    assert check.brevitas_vs_qonnx_mismatches == 0, check.first_mismatch
    assert check.qonnx_vs_intref_mismatches == 0, check.first_mismatch
    assert check.ok
    # every node output was compared (each is on its fixed-point grid in the integer emulation)
    n_outputs = sum(len(n.output) for n in w.graph.node)
    assert check.n_tensors_compared == n_outputs
    ops = {n.op_type for n in w.graph.node}
    assert "FirmwareSoftmax" in ops and "Quant" in ops and "Gemm" not in ops
    assert (tmp_path / "m.onnx").stat().st_size > 0
    if kind == "topk":
        topks = sorted(helper.get_attribute_value(a) for n in w.graph.node if n.op_type == "FirmwareSoftmax"
                       for a in n.attribute if a.name == "topk")
        assert topks == [0, 0, 3, 3]  # 2 particle-attention heads with k=3, 2 class-attention heads without
