"""da4ml's cost charged to the graph nodes that built it (``l1tagger.rtl.attribution``) and split per block.

The charges must add up to da4ml's own total exactly, layout nodes own nothing, a change planted in one node's
constants moves that node's charge and no other's, and the report's da4ml record carries the per-block split."""

from __future__ import annotations

import onnx
import pytest

from l1tagger.verify.graphs import attention_block, l1words_graph

pytest.importorskip("da4ml")

LAYOUT = {"Reshape", "Transpose", "Unsqueeze", "Identity", "Flatten", "Squeeze"}


def _lower(model):
    from l1tagger.rtl.lower import lower_model

    return lower_model(model.model)


def test_node_charges_sum_to_da4mls_total_and_layout_owns_nothing():
    model = attention_block(n=6, rounding="FLOOR")
    low = _lower(model)
    names = {n.name: n.op_type for n in model.graph.node}
    assert set(low.node_cost) <= set(names)
    assert sum(low.node_cost.values()) == pytest.approx(low.comb.cost, abs=1e-6) and low.comb.cost > 0
    assert not {n for n in low.node_cost if names[n] in LAYOUT}
    ops = {names[n] for n in low.node_cost}
    assert {"MatMul", "FirmwareSoftmax"} <= ops


def test_a_change_planted_in_one_node_moves_its_charge_and_none_upstream():
    """Other digits in one weight matrix (a Quant of a constant): the MatMul that consumes it is charged
    differently; only it and the nodes downstream of it (whose value ranges follow) may change, every other node,
    the other projections included, keeps its charge exactly."""
    import numpy as np
    from onnx import numpy_helper

    model = attention_block(n=6, rounding="FLOOR")
    base = _lower(model).node_cost
    planted = onnx.ModelProto()
    planted.CopyFrom(model.model)
    g = planted.graph
    matmul = next(n for n in g.node if n.op_type == "MatMul" and n.input[1].startswith("Quant"))
    quant = next(n for n in g.node if n.output[0] == matmul.input[1])
    init = next(i for i in g.initializer if i.name == quant.input[0])
    w = numpy_helper.to_array(init)
    init.CopyFrom(numpy_helper.from_array((w * 1.37 + 0.11).astype(w.dtype), init.name))  # other digits
    from l1tagger.rtl.lower import lower_model

    moved = lower_model(planted).node_cost
    changed = {n for n in set(base) | set(moved) if not np.isclose(base.get(n, 0.0), moved.get(n, 0.0))}
    assert matmul.name in changed
    downstream, tensors = {matmul.name}, set(matmul.output)
    for n in g.node:  # graph order is topological
        if tensors & set(n.input):
            downstream.add(n.name)
            tensors |= set(n.output)
    assert changed <= downstream | {quant.name}, changed - downstream
    kept = {n for n in base if n not in downstream and n != quant.name}
    assert any(n.startswith("MatMul") for n in kept) and all(moved[n] == base[n] for n in kept)


def test_da4ml_record_splits_its_cost_per_block(tmp_path):
    """On L1 words the pair features are a block of their own in da4ml's split too; the shares sum to 1."""
    from l1tagger.report.da4ml_cost import cached_da4ml_cost, read_cached

    model = l1words_graph(n=6)
    path = tmp_path / "g.onnx"
    onnx.save(model.model, str(path))
    rec = cached_da4ml_cost(path, tmp_path)
    assert rec["status"] == "ok"
    blocks = rec["blocks"]
    assert sum(b["lut"] for b in blocks.values()) == pytest.approx(rec["lut"])
    assert sum(b["share"] for b in blocks.values()) == pytest.approx(1.0)
    assert blocks["pair features"]["lut"] > 0 and blocks["particle features"]["lut"] > 0
    assert read_cached(path, tmp_path)["blocks"] == blocks  # the cache keeps the split
