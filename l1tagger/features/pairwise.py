"""ParT pairwise interaction features (ln kT, ln z, ln Delta, ln m^2) for numpy arrays or torch tensors.

The formulas live in ``l1tagger.physics.kinematics.pairwise_features``; this module adds masking so padded
pairs are exactly zero, and the diagonal handling used by ParT (features of a particle with itself are kept,
as in weaver-core, where they are finite because of the 1e-8 clamp).
"""

from __future__ import annotations

from l1tagger.physics import kinematics as kin

PAIR_FEATURES = ("pair_lnkt", "pair_lnz", "pair_lndelta", "pair_lnm2")


def pairwise_features(p4, mask):
    """p4: (..., N, 4) (px, py, pz, E); mask: (..., N) bool. Returns (..., N, N, 4), zero where either is padded.

    Works on numpy arrays and torch tensors alike (the array namespace is inferred).
    """
    xp = kin.namespace(p4)
    feats = kin.pairwise_features(p4[..., 0], p4[..., 1], p4[..., 2], p4[..., 3], xp)
    pm = mask[..., :, None] & mask[..., None, :]
    return xp.where(pm[..., None], feats, xp.zeros_like(feats))


def jet_pairwise_features(jets, n_particles: int, order=None):
    """Pairwise features for a JetSet, padded/truncated to ``n_particles`` in the same order as particle_features."""
    import numpy as np

    p4, mask = jets.p4, jets.mask
    if order is not None:
        p4 = np.take_along_axis(p4, np.asarray(order)[..., None], axis=1)
        mask = np.take_along_axis(mask, np.asarray(order), axis=1)
    P = p4.shape[1]
    if P < n_particles:
        p4 = np.pad(p4, ((0, 0), (0, n_particles - P), (0, 0)))
        mask = np.pad(mask, ((0, 0), (0, n_particles - P)))
    p4, mask = p4[:, :n_particles].astype(np.float64), mask[:, :n_particles]
    return pairwise_features(p4, mask).astype(np.float32)
