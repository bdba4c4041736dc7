"""Particle ordering strategies for the Linformer (l1tagger.features.ordering)."""

import numpy as np
import pytest

from l1tagger.errors import ConfigError
from l1tagger.features.ordering import particle_order
from l1tagger.physics import kinematics as kin


@pytest.mark.parametrize("strategy", ["pt", "dr", "cluster"])
def test_orderings_are_real_first_permutations(toy_jets, strategy):
    jets = toy_jets.subset(np.arange(20))
    order = particle_order(jets, strategy)
    assert order.shape == jets.mask.shape
    for j in range(len(jets)):
        n = jets.n_particles[j]
        assert sorted(order[j]) == list(range(jets.max_particles))
        assert set(order[j, :n]) == set(range(n))  # real particles first


def test_pt_and_dr_are_sorted(toy_jets):
    jets = toy_jets.subset(np.arange(10))
    p4 = jets.p4.astype(np.float64)
    pt = kin.pt(p4[..., 0], p4[..., 1])
    o = particle_order(jets, "pt")
    for j in range(10):
        n = jets.n_particles[j]
        assert np.all(np.diff(pt[j, o[j, :n]]) <= 0)
    from l1tagger.features.particle import particle_features

    x, _ = particle_features(jets, 24, ("part_deltaR",), order=particle_order(jets, "dr"))
    for j in range(10):
        n = jets.n_particles[j]
        assert np.all(np.diff(x[j, :n, 0]) >= -1e-6)


def test_cluster_order_groups_subjets():
    """Two well separated prongs: C/A history order puts each prong's particles in one contiguous run."""
    from l1tagger.data.jetset import JetSet

    rng = np.random.default_rng(0)
    eta = np.r_[rng.normal(0, 0.01, 5), rng.normal(0.5, 0.01, 5)]
    phi = np.r_[rng.normal(0, 0.01, 5), rng.normal(0.4, 0.01, 5)]
    pt = rng.uniform(5, 50, 10)
    idx = rng.permutation(10)  # interleave the prongs in the stored order
    eta, phi, pt = eta[idx], phi[idx], pt[idx]
    prong = (idx >= 5).astype(int)
    p4 = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], -1)[None]
    jets = JetSet(p4=p4, n_particles=[10], charge=np.zeros((1, 10)), pid=np.zeros((1, 10, 5)), labels=[0],
                  class_names=["a", "b"])
    o = particle_order(jets, "cluster")[0]
    runs = np.count_nonzero(np.diff(prong[o]) != 0)
    assert runs == 1
    with pytest.raises(ConfigError, match="ordering"):
        particle_order(jets, "random")
