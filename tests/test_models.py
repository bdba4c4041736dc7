"""L1 tagger family: shapes, masking, permutation invariance, top-k, op-factory naming, ParT reference."""

import numpy as np
import pytest
import torch

from l1tagger.errors import ConfigError, DataError
from l1tagger.models import ModelConfig, build_model, count_macs, recording
from l1tagger.models.ops import FloatOps
from l1tagger.models.part import ParT, matched, preset
from l1tagger.models.projections import projection_matrix

torch.set_num_threads(1)
KINDS = [("full", True), ("full", False), ("linformer", True), ("linformer", False), ("topk", True), ("topk", False)]


def make(attention="full", pair_bias=True, N=10, seed=0, **kw):
    torch.manual_seed(seed)
    opts = dict(d_model=8, n_heads=2, n_blocks=2, ffn_dim=12, embed_dim=8, head_dim=8, pair_hidden=4, linformer_k=3,
                topk_k=2) | kw
    cfg = ModelConfig(n_particles=N, n_classes=4, attention=attention, pair_bias=pair_bias, **opts)
    return build_model(cfg).eval(), cfg


def batch(cfg, B=6, n_real=(3, 10, 7, 1, 5, 10), seed=1):
    g = torch.Generator().manual_seed(seed)
    N = cfg.n_particles
    x = torch.randn(B, N, cfg.n_features, generator=g)
    mask = (torch.arange(N)[None, :] < torch.tensor(n_real)[:, None]).float()
    pair = torch.randn(B, N, N, 4, generator=g)
    x = x * mask[..., None]
    pair = pair * (mask[:, :, None] * mask[:, None, :])[..., None]
    return x, mask, pair


@pytest.mark.parametrize("attention,pair_bias", KINDS)
def test_shapes_and_records(attention, pair_bias):
    model, cfg = make(attention, pair_bias)
    x, mask, pair = batch(cfg)
    with recording(model):
        y = model(x, mask, pair if pair_bias else None)
    assert y.shape == (6, 4) and torch.isfinite(y).all()
    recs = model.attention_records()
    assert [r["layer"] for r in recs] == ["blocks.0", "blocks.1", "cls"]
    nk = cfg.linformer_k if attention == "linformer" else cfg.n_particles
    assert recs[0]["weights"].shape == (6, 2, 10, nk)
    assert recs[0]["particle_weights"].shape == (6, 2, 10, 10)
    assert (recs[0]["u"] is not None) == pair_bias
    assert recs[-1]["weights"].shape == (6, 2, 1, 10)


@pytest.mark.parametrize("attention,pair_bias", KINDS)
def test_padded_particles_do_not_change_output(attention, pair_bias):
    model, cfg = make(attention, pair_bias)
    x, mask, pair = batch(cfg)
    pad = (1 - mask).bool()
    x2 = x.clone()
    x2[pad] = 7.0  # garbage in padded slots
    pair2 = pair.clone()
    pp = pad[:, :, None] | pad[:, None, :]
    pair2[pp] = -5.0
    p1, p2 = (pair, pair2) if pair_bias else (None, None)
    with torch.no_grad():
        torch.testing.assert_close(model(x, mask, p1), model(x2, mask, p2), rtol=0, atol=1e-5)


@pytest.mark.parametrize("attention", ["full", "topk"])
def test_more_padding_slots_same_output(attention):
    """Full/top-k weights do not depend on N: a jet padded to 14 slots gives what it gave at 10."""
    m10, cfg10 = make(attention, True, N=10)
    m14, _ = make(attention, True, N=14, seed=5)
    m14.load_state_dict(m10.state_dict())
    x, mask, pair = batch(cfg10)
    x14 = torch.nn.functional.pad(x, (0, 0, 0, 4))
    mask14 = torch.nn.functional.pad(mask, (0, 4))
    pair14 = torch.nn.functional.pad(pair, (0, 0, 0, 4, 0, 4))
    with torch.no_grad():
        torch.testing.assert_close(m10(x, mask, pair), m14(x14, mask14, pair14), rtol=0, atol=1e-5)


@pytest.mark.parametrize("attention,pair_bias", [k for k in KINDS if k[0] != "linformer"])
def test_permutation_invariance(attention, pair_bias):
    model, cfg = make(attention, pair_bias)
    x, mask, pair = batch(cfg, n_real=(10, 10, 7, 4, 9, 10))
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    # permute real particles only (keep padding at the end), per jet
    xs, ms, ps = [], [], []
    for b in range(x.shape[0]):
        n = int(mask[b].sum())
        p = torch.cat([perm[perm < n], torch.arange(n, 10)])
        xs.append(x[b, p]), ms.append(mask[b, p]), ps.append(pair[b][p][:, p])
    xp, mp, pp = torch.stack(xs), torch.stack(ms), torch.stack(ps)
    use = (lambda t: t) if pair_bias else (lambda t: None)
    with torch.no_grad():
        torch.testing.assert_close(model(x, mask, use(pair)), model(xp, mp, use(pp)), rtol=0, atol=1e-5)


def test_linformer_depends_on_order():
    model, cfg = make("linformer", True)
    x, mask, pair = batch(cfg, n_real=(10,) * 6)
    p = torch.arange(9, -1, -1)
    with torch.no_grad():
        assert not torch.allclose(model(x, mask, pair), model(x[:, p], mask[:, p], pair[:, p][:, :, p]), atol=1e-4)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_topk_keeps_exactly_k(k):
    model, cfg = make("topk", True, topk_k=k)
    x, mask, pair = batch(cfg)
    with torch.no_grad(), recording(model):
        model(x, mask, pair)
    w = model.attention_records()[0]["weights"]  # (B,H,N,N)
    n_real = mask.sum(1).numpy().astype(int)
    for b in range(w.shape[0]):
        rows = w[b, :, : n_real[b], :]
        nz = (rows > 0).sum(-1)
        assert (nz == min(k, n_real[b])).all()
        assert (w[b, :, :, n_real[b]:] == 0).all()
        np.testing.assert_allclose(rows.sum(-1), 1.0, atol=1e-5)


def test_input_errors():
    model, cfg = make("full", True)
    x, mask, pair = batch(cfg)
    with pytest.raises(DataError, match="more particles"):
        model(torch.zeros(2, 12, cfg.n_features), torch.ones(2, 12), torch.zeros(2, 12, 12, 4))
    with pytest.raises(DataError, match="pair"):
        model(x, mask, None)
    with pytest.raises(DataError, match="mask"):
        model(x, mask[:, :5], pair)
    with pytest.raises(ConfigError, match="attention"):
        ModelConfig(attention="sparse").validate()
    with pytest.raises(ConfigError, match="divisible"):
        ModelConfig(d_model=10, n_heads=3).validate()


class NamingOps(FloatOps):
    """FloatOps that records every layer name the model asks for."""

    def __init__(self):
        self.names = []
        for method in ("input_quant", "quant", "linear", "relu", "matmul", "add", "mul", "mask_mul", "softmax"):
            base = getattr(FloatOps, method)
            setattr(self, method, self._wrap(base))

    def _wrap(self, base):
        def f(name, *a, **kw):
            self.names.append(name)
            return base(self, name, *a, **kw)

        return f


@pytest.mark.parametrize("attention,pair_bias", KINDS)
def test_all_layers_come_from_ops_with_unique_names(attention, pair_bias):
    ops = NamingOps()
    torch.manual_seed(0)
    cfg = ModelConfig(n_particles=8, n_classes=3, attention=attention, pair_bias=pair_bias, d_model=8, n_heads=2,
                      n_blocks=2, linformer_k=3)
    model = build_model(cfg, ops=ops)
    assert len(ops.names) == len(set(ops.names)), "duplicate op names"
    assert "input.x" in ops.names and ("input.pair" in ops.names) == pair_bias
    # every Linear / ReLU in the model was created by the factory (no direct torch.nn use)
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert n_linear == sum(1 for n in ops.names if n.split(".")[-1] in
                           ("q", "k", "v", "E", "F", "u_proj", "out", "fc1", "fc2", "score"))
    assert not any(isinstance(m, (torch.nn.LayerNorm, torch.nn.GELU)) for m in model.modules())


def test_q_projection_absorbs_sqrt_d():
    torch.manual_seed(0)
    model, cfg = make("full", True)
    head = model.blocks[0].heads[0]
    bound = 1 / np.sqrt(cfg.d_model)  # torch default init bound
    assert head.k.weight.abs().max() <= bound and head.k.weight.abs().max() > bound / np.sqrt(cfg.head_size)
    assert head.q.weight.abs().max() <= bound / np.sqrt(cfg.head_size) + 1e-7


@pytest.mark.parametrize("kind", ["blocks", "log_blocks"])
def test_physics_projections(kind):
    E = projection_matrix(kind, 16, 4)
    assert E.shape == (4, 16)
    np.testing.assert_allclose(E.sum(1), 1.0)
    assert (E.argmax(1) == np.sort(E.argmax(1))).all()  # rows move along the ordered particle axis
    model, _ = make("linformer", True, N=16, linformer_k=4, linformer_init=kind, linformer_fixed=True)
    h = model.blocks[0].heads[0]
    np.testing.assert_allclose(h.E.weight.detach().numpy(), E, atol=1e-6)
    assert not h.E.weight.requires_grad and not h.F.weight.requires_grad
    assert projection_matrix("random", 16, 4) is None
    with pytest.raises(ConfigError):
        projection_matrix("rings", 16, 4)


def test_macs():
    base = dict(n_particles=32, n_classes=5, d_model=16, n_heads=2)
    full_u = count_macs(ModelConfig(attention="full", pair_bias=True, **base))
    full = count_macs(ModelConfig(attention="full", pair_bias=False, **base))
    lin = count_macs(ModelConfig(attention="linformer", pair_bias=False, linformer_k=4, **base))
    assert full_u["total"] > full["total"] > lin["total"]
    assert full["blocks.qk"] == 32 * 32 * 16 and lin["blocks.qk"] == 32 * 4 * 16
    assert full_u["pair"] == 32 * 32 * (4 * 8 + 8 * 2)
    assert full["total"] == sum(v for k, v in full.items() if k != "total")


def test_part_reference():
    cfg = ModelConfig(n_particles=10, n_classes=4, d_model=8, n_heads=2, embed_dim=8)
    torch.manual_seed(0)
    part = ParT(matched(cfg)).eval()
    assert any(isinstance(m, torch.nn.LayerNorm) for m in part.modules())
    x, mask, pair = batch(cfg)
    y = part(x, mask, pair)
    x2 = x.clone()
    x2[(1 - mask).bool()] = 3.0
    with torch.no_grad():
        torch.testing.assert_close(y, part(x2, mask, pair), rtol=0, atol=1e-5)
    lite = preset("part_lite", n_features=7, n_classes=10, n_particles=10)
    assert lite.d_model == 64 and lite.n_heads == 8 and lite.fc_dims == (512, 316)
    with pytest.raises(ConfigError):
        preset("part_huge", 7, 10)
