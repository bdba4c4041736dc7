"""Bit-exactness for the full attention twin (+U): Brevitas == QONNX reference == integer emulation, 1000 toy jets."""

from pathlib import Path

import pytest
import torch

from l1tagger.export.examples import verify_example

RECIPES = Path(__file__).resolve().parents[1] / "quantize"


@pytest.mark.parametrize("recipe", ["int8", "int6_floor"])
def test_full_bit_exact_on_1000_jets(recipe, tmp_path):
    torch.set_num_threads(1)
    check, w = verify_example("full", RECIPES / f"{recipe}.yaml", n_jets=1000, path=tmp_path / "m.onnx")
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
