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
