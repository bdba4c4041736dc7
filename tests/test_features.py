import numpy as np
import pytest
import torch

from l1tagger.errors import DataError
from l1tagger.features import particle_features, pairwise_features
from l1tagger.features.pairwise import jet_pairwise_features


def test_particle_features_shapes_and_padding(toy_jets):
    X, mask = particle_features(toy_jets, 16, "full")
    assert X.shape == (len(toy_jets), 16, 13) and mask.shape == (len(toy_jets), 16)
    assert (X[~mask] == 0).all()
    assert (mask.sum(1) == np.minimum(toy_jets.n_particles, 16)).all()


def test_pairwise_numpy_and_torch_agree_and_mask(toy_jets):
    p4 = toy_jets.p4[:8, :10].astype(np.float64)
    m = toy_jets.mask[:8, :10]
    a = pairwise_features(p4, m)
    b = pairwise_features(torch.tensor(p4), torch.tensor(m)).numpy()
    np.testing.assert_array_equal(a.shape, (8, 10, 10, 4))
    assert np.abs(a - b).max() < 1e-9
    pm = m[:, :, None] & m[:, None, :]
    assert (a[~pm] == 0).all()
    assert np.isfinite(a).all()


def test_pairwise_matches_hand_formula():
    # two massless particles with known kinematics
    def p4(pt, y, phi):
        return [pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(y), pt * np.cosh(y)]

    v = np.array([[p4(100.0, 0.1, 0.2), p4(50.0, -0.2, 0.5)]])
    f = pairwise_features(v, np.array([[True, True]]))[0, 0, 1]
    delta = np.hypot(0.3, 0.3)
    m2 = 2 * 100 * 50 * (np.cosh(0.3) - np.cos(0.3))
    np.testing.assert_allclose(f, [np.log(50 * delta), np.log(50 / 150), np.log(delta), np.log(m2)], rtol=1e-9)


def test_nan_feature_is_named(toy_jets):
    bad = toy_jets.subset(np.arange(4))
    bad.p4 = bad.p4.copy()
    bad.p4[2, 0, 0] = np.nan
    with pytest.raises(DataError, match="jet 2"):
        particle_features(bad, 8)


def test_empty_jet_is_named(toy_jets):
    bad = toy_jets.subset(np.arange(4))
    bad.n_particles = bad.n_particles.copy()
    bad.n_particles[1] = 0
    with pytest.raises(DataError, match="zero particles"):
        particle_features(bad, 8)


def test_unknown_feature_set(toy_jets):
    with pytest.raises(DataError, match="unknown feature set"):
        particle_features(toy_jets, 8, "nope")


def test_jet_pairwise_padding(toy_jets):
    f = jet_pairwise_features(toy_jets.subset(np.arange(3)), 32)
    assert f.shape == (3, 32, 32, 4)


# ------------------------------------------------------------- one ordered pad/truncate (features/layout.py)
def _old_layout(jets, n, order):
    """The pad/truncate that particle_features and jet_pairwise_features each carried before features/layout.py,
    verbatim: gather by ``order`` (None = stored order), pad to n, keep the first n."""
    p4, mask, charge, pid = jets.p4, jets.mask, jets.charge, jets.pid
    if order is not None:
        take = np.take_along_axis
        p4, mask = take(p4, order[..., None], axis=1), take(mask, order, axis=1)
        charge, pid = take(charge, order, axis=1), take(pid, order[..., None], axis=1)
    P = p4.shape[1]
    if P < n:
        p4 = np.pad(p4, ((0, 0), (0, n - P), (0, 0)))
        mask = np.pad(mask, ((0, 0), (0, n - P)))
        charge = np.pad(charge, ((0, 0), (0, n - P)))
        pid = np.pad(pid, ((0, 0), (0, n - P), (0, 0)))
    return p4[:, :n], mask[:, :n], charge[:, :n], pid[:, :n]


def _old_particle_features(jets, n, order):
    """particle_features("full") as it was computed before features/layout.py."""
    from l1tagger.data.jetset import PID_FLAGS
    from l1tagger.physics import kinematics as kin

    p4, mask, charge, pid = _old_layout(jets, n, order)
    s = (jets.p4 * jets.mask[..., None]).sum(axis=1)
    jpt, jeta, jphi, je = kin.pt(s[:, 0], s[:, 1]), kin.eta(s[:, 0], s[:, 1], s[:, 2]), kin.phi(s[:, 0], s[:, 1]), s[:, 3]
    px, py, pz, e = (p4[..., i].astype(np.float64) for i in range(4))
    ppt = kin.pt(px, py)
    deta, dphi = kin.eta(px, py, pz) - jeta[:, None], kin.delta_phi(kin.phi(px, py), jphi[:, None])
    cols = [np.log(np.clip(ppt, kin.EPS, None)), np.log(np.clip(e, kin.EPS, None)),
            np.log(np.clip(ppt / jpt[:, None], kin.EPS, None)), np.log(np.clip(e / je[:, None], kin.EPS, None)),
            np.hypot(deta, dphi), deta, dphi, charge.astype(np.float64)]
    cols += [pid[..., i].astype(np.float64) for i in range(len(PID_FLAGS))]
    return np.where(mask[..., None], np.stack(cols, -1), 0.0).astype(np.float32), mask


@pytest.mark.parametrize("ordering", [None, "pt", "dr", "cluster"])
def test_features_unchanged_by_the_shared_layout(toy_jets, ordering):
    """Particle and pairwise features (and raw model inputs) are bit-identical to the old per-module pad/truncate,
    for each ordering, both truncating (N=8 < P=24) and padding (N=32 > P)."""
    from l1tagger.features import ordered_particles, particle_order, raw_inputs
    from l1tagger.models import ModelConfig

    jets = toy_jets.subset(np.arange(64))
    for n in (8, 32):
        order = None if ordering is None else particle_order(jets, ordering, n_keep=n)
        want_x, want_mask = _old_particle_features(jets, n, order)
        p4, mask, charge, pid = _old_layout(jets, n, order)
        want_pair = pairwise_features(p4.astype(np.float64), mask).astype(np.float32)
        for given in ((order,) if ordering is None else (order, ordering)):  # a permutation or a strategy name
            x, m = particle_features(jets, n, "full", order=given)
            np.testing.assert_array_equal(x, want_x)
            np.testing.assert_array_equal(m, want_mask)
            np.testing.assert_array_equal(jet_pairwise_features(jets, n, order=given), want_pair)
            slots = ordered_particles(jets, n, given)
            for got, want in ((slots.p4, p4.astype(np.float64)), (slots.mask, mask), (slots.charge, charge),
                              (slots.pid, pid)):
                assert got.dtype == want.dtype
                np.testing.assert_array_equal(got, want)
        if ordering is not None:
            raw = raw_inputs(jets, ModelConfig(n_particles=n, features="full", ordering=ordering, pair_bias=True))
            np.testing.assert_array_equal(raw.x, want_x)
            np.testing.assert_array_equal(raw.pair, want_pair)


def test_ordered_particles_order_names_the_constituent_in_each_slot(toy_jets):
    from l1tagger.features import ordered_particles

    jets = toy_jets.subset(np.arange(16))
    for n in (8, 32):
        slots = ordered_particles(jets, n, "dr")
        assert slots.order.shape == (16, n) and slots.order.dtype == np.int64
        assert (slots.order[~slots.mask] == -1).all() and (slots.order[slots.mask] >= 0).all()
        for j in range(16):
            real = slots.mask[j]
            np.testing.assert_array_equal(slots.p4[j, real], jets.p4[j, slots.order[j, real]].astype(np.float64))
            assert real.sum() == min(n, jets.n_particles[j])


def test_ordered_particles_rejects_bad_orders(toy_jets):
    from l1tagger.features import ordered_particles

    jets = toy_jets.subset(np.arange(4))
    good = np.tile(np.arange(jets.max_particles), (4, 1))
    dup = good.copy()
    dup[2, 1] = 0
    with pytest.raises(DataError, match="order of jet 2 is not a permutation"):
        ordered_particles(jets, 8, dup)
    pad_first = good.copy()
    pad_first[3] = pad_first[3, ::-1]
    with pytest.raises(DataError, match="order of jet 3 must keep padded particles after the real ones"):
        ordered_particles(jets, 8, pad_first)
    with pytest.raises(DataError, match="order must have shape"):
        ordered_particles(jets, 8, good[:, :5])
    with pytest.raises(DataError, match="integer"):
        ordered_particles(jets, 8, good.astype(float))
    with pytest.raises(DataError, match="positive"):
        ordered_particles(jets, 0)


def test_jet_axis_numpy_and_torch_agree(toy_jets):
    from l1tagger.physics.kinematics import jet_axis

    p4, m = toy_jets.p4[:8].astype(np.float64), toy_jets.mask[:8]
    a = jet_axis(p4, m)
    b = jet_axis(torch.tensor(p4), torch.tensor(m))
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v.numpy(), rtol=1e-12)
    s = p4[0, : toy_jets.n_particles[0]].sum(0)
    np.testing.assert_allclose([a[0][0], a[3][0]], [np.hypot(s[0], s[1]), s[3]], rtol=1e-12)
