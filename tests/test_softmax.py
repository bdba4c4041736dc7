"""The firmware softmax: spec validation, tables, numpy integer reference vs torch emulation vs qonnx custom op."""

import json

import numpy as np
import pytest
import torch

from l1tagger.errors import ConfigError, DataError
from l1tagger.qat.softmax import FirmwareSoftmax, SoftmaxSpec, softmax_int

torch.set_num_threads(1)

SPECS = [
    SoftmaxSpec.default_for(8, 4, 16, 8, "floor"),
    SoftmaxSpec.default_for(8, 3, 16, 8, "half_even"),
    SoftmaxSpec.default_for(6, 2, 8, 6, "half_up"),
    SoftmaxSpec.default_for(12, 6, 32, 10, "floor"),
    # exp_shift > 0: a table smaller than the input range
    SoftmaxSpec.default_for(12, 8, 16, 8, "half_even", max_table_bits=9),
]


def _random_case(spec, rng, shape=(64, 3, 16)):
    q = rng.integers(spec.in_min, spec.in_max + 1, size=shape)
    # some rows with ties and extreme values
    q[0, 0, :] = 0
    q[1, 0, :4] = spec.in_max
    q[1, 0, 4:] = spec.in_min
    mask = rng.random((shape[0], 1, shape[-1])) < 0.75
    mask[2] = False  # every key of a jet dropped
    return q, mask


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.in_bits}b{s.in_frac}f-{s.rounding}-sh{s.exp_shift}")
@pytest.mark.parametrize("topk", [0, 1, 5])
def test_numpy_and_torch_bit_exact(spec, topk):
    rng = np.random.default_rng(1 + topk)
    q, mask = _random_case(spec, rng)
    o = softmax_int(q, mask, topk, spec)
    sm = FirmwareSoftmax(spec, topk)
    logits = torch.tensor(q * 2.0**-spec.in_frac, dtype=torch.float32)
    w = sm(logits, torch.tensor(mask, dtype=torch.float32)).numpy()
    assert np.array_equal(w * 2.0**spec.out_frac, o.astype(np.float64))
    # on the output grid and in range
    assert o.dtype == np.int64 and o.min() >= 0 and o.max() <= spec.out_max
    # masked keys and fully masked rows give exactly 0
    full = np.broadcast_to(mask, q.shape)
    assert (o[~full] == 0).all()
    assert (o[2] == 0).all()
    if topk:
        assert ((o > 0).sum(-1) <= topk).all()


def test_topk_keeps_exactly_k_when_weights_nonzero():
    spec = SoftmaxSpec.default_for(8, 6, 16, 8)  # in_frac 6: range +-2, every kept weight > 0
    rng = np.random.default_rng(0)
    q = rng.integers(-20, 20, size=(200, 16))
    for k in (1, 3, 8):
        o = softmax_int(q, None, k, spec)
        assert ((o > 0).sum(-1) == k).all()
        # the kept keys are the k largest (ties -> lower index)
        order = np.argsort(-q, axis=-1, kind="stable")[:, :k]
        expect = np.zeros(q.shape, bool)
        np.put_along_axis(expect, order, True, axis=-1)
        assert np.array_equal(expect, o > 0)


def test_ties_go_to_lower_index():
    spec = SoftmaxSpec.default_for(8, 4, 8, 8)
    q = np.array([[3, 5, 5, 5, 1, 0, 0, 0]])
    o = softmax_int(q, None, 2, spec)
    assert list(np.flatnonzero(o[0])) == [1, 2]


@pytest.mark.parametrize("spec", SPECS[:4], ids=lambda s: f"{s.in_bits}b{s.in_frac}f")
def test_close_to_float_softmax(spec):
    rng = np.random.default_rng(3)
    q, mask = _random_case(spec, rng, shape=(200, 1, 16))
    mask[:] = True
    o = softmax_int(q, mask, 0, spec) * 2.0**-spec.out_frac
    x = q * 2.0**-spec.in_frac
    ref = np.exp(x - x.max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    # exp quantisation + inverse table + output rounding: a few output LSBs
    assert np.abs(o - ref).max() <= 4 * 2.0**-spec.out_frac


def test_straight_through_gradient_is_float_softmax_gradient():
    spec = SoftmaxSpec.default_for(8, 4, 8, 8)
    rng = np.random.default_rng(0)
    q = rng.integers(-60, 60, size=(4, 8))
    x1 = torch.tensor(q / 16.0, dtype=torch.float32, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    mask = torch.ones(4, 8)
    mask[0, 5:] = 0
    g = torch.randn(4, 8)
    (FirmwareSoftmax(spec, 3)(x1, mask) * g).sum().backward()
    from l1tagger.models.ops import masked_topk_softmax

    (masked_topk_softmax(x2, mask, 3) * g).sum().backward()
    # the straight-through backward is exactly the float masked softmax gradient; the forward is checked bit for bit
    assert torch.equal(x1.grad, x2.grad)


def test_tables_are_defined_and_index_full_input():
    for spec in SPECS:
        exp_t, inv_t = spec.exp_table(), spec.inv_table()
        assert exp_t.dtype == np.int64 and inv_t.dtype == np.int64
        assert exp_t[0] == 2**spec.exp_frac
        assert (np.diff(exp_t) <= 0).all() and (np.diff(inv_t) <= 0).all()
        assert spec.exp_table_covers_input
        assert inv_t.max() <= 2**spec.inv_bits - 1
    s = SPECS[0]
    # round-half-up of the documented formula, recomputed independently
    t = np.arange(2**s.exp_table_bits)
    assert np.array_equal(s.exp_table(), np.floor(2.0**s.exp_frac * np.exp(-t * 2.0 ** (s.exp_shift - s.in_frac)) + 0.5))
    ti = np.arange(2**s.inv_table_bits)
    ref = np.floor(2.0 ** (s.inv_frac + s.exp_frac) / np.maximum((ti + 0.5) * 2.0**s.inv_shift, 2.0**s.exp_frac) + 0.5)
    assert np.array_equal(s.inv_table(), np.minimum(ref, 2**s.inv_bits - 1))
    assert len(s.table_digest()) == 64


def test_spec_roundtrip_and_validation():
    s = SPECS[1]
    assert SoftmaxSpec.from_dict(s.to_dict()) == s
    assert SoftmaxSpec.from_json(s.to_json()) == s
    assert json.loads(s.to_json())["rounding"] == "half_even"
    bad = s.to_dict() | {"exp_frac": 0}
    with pytest.raises(ConfigError, match="exp_frac"):
        SoftmaxSpec.from_dict(bad)
    with pytest.raises(ConfigError, match="rounding"):
        SoftmaxSpec.from_dict(s.to_dict() | {"rounding": "nearest"})
    with pytest.raises(ConfigError, match="in_bitz"):
        SoftmaxSpec.from_dict(s.to_dict() | {"in_bitz": 8})
    with pytest.raises(ConfigError, match="out_frac"):
        SoftmaxSpec.from_dict(s.to_dict() | {"out_frac": 40})
    with pytest.raises(ConfigError, match="in_bits"):
        SoftmaxSpec.from_dict(s.to_dict() | {"in_bits": 8.5})
    # the one strict loader: the dotted path of the spec in a larger document, unknown / missing / mistyped fields
    with pytest.raises(ConfigError, match=r"^softmax\.blocks\.0\.in_bitz: unknown key \(known keys of softmax"):
        SoftmaxSpec.from_dict(s.to_dict() | {"in_bitz": 8}, "softmax.blocks.0")
    with pytest.raises(ConfigError, match=r"^in_frac: missing"):
        SoftmaxSpec.from_dict({k: v for k, v in s.to_dict().items() if k != "in_frac"})
    with pytest.raises(ConfigError, match=r"^in_bits: expected int, got bool"):
        SoftmaxSpec.from_dict(s.to_dict() | {"in_bits": True})
    with pytest.raises(ConfigError, match=r"^spec: expected a mapping of SoftmaxSpec keys, got list"):
        SoftmaxSpec.from_dict([1, 2], "spec")


def test_off_grid_and_out_of_range_inputs_raise():
    spec = SoftmaxSpec.default_for(8, 4, 8, 8)
    with pytest.raises(DataError, match="grid"):
        FirmwareSoftmax(spec)(torch.full((1, 8), 0.01))
    with pytest.raises(DataError, match="range"):
        FirmwareSoftmax(spec)(torch.full((1, 8), 100.0))
    with pytest.raises(DataError, match="range"):
        softmax_int(np.full((1, 8), 300), None, 0, spec)
    with pytest.raises(DataError, match="integer"):
        softmax_int(np.full((1, 8), 0.5), None, 0, spec)


def test_qonnx_custom_op_matches_reference():
    """The FirmwareSoftmax node executes through qonnx's registry (domain = module path)."""
    import onnx
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    spec = SPECS[1]
    node = helper.make_node(
        "FirmwareSoftmax", ["x", "m"], ["y"], domain="l1tagger.export.custom_ops", spec=spec.to_json(), topk=3
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 16]), helper.make_tensor_value_info("m", TensorProto.FLOAT, [5, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 16])],
    )
    model = ModelWrapper(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("l1tagger.export.custom_ops", 1)])
    )
    rng = np.random.default_rng(0)
    q = rng.integers(spec.in_min, spec.in_max + 1, size=(5, 16))
    m = (rng.random((5, 16)) < 0.8).astype(np.float32)
    out = execute_onnx(model, {"x": (q * 2.0**-spec.in_frac).astype(np.float32), "m": m})["y"]
    assert np.array_equal(out * 2.0**spec.out_frac, softmax_int(q, m, 3, spec))
    with pytest.raises(DataError, match="off the grid"):
        execute_onnx(model, {"x": np.full((5, 16), 0.01, np.float32), "m": m})
