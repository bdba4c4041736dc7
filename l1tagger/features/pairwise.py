"""ParT pairwise interaction features (ln kT, ln z, ln Delta, ln m^2) for numpy arrays or torch tensors.

The formulas live in ``l1tagger.physics.kinematics.pairwise_features``; this module adds masking so padded
pairs are exactly zero, and the diagonal handling used by ParT (features of a particle with itself are kept,
as in weaver-core, where they are finite because of the 1e-8 clamp).
"""

from __future__ import annotations

import numpy as np

from l1tagger.features.layout import ordered_particles
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


def jet_pairwise_features(jets, n_particles: int, order: str | np.ndarray | None = None) -> np.ndarray:
    """Pairwise features (n_jets, N, N, 4) float32 of a JetSet in the model's slots (``ordered_particles``: the same
    order and truncation/padding to ``n_particles`` as particle_features with the same ``order``)."""
    slots = ordered_particles(jets, n_particles, order)
    return pairwise_features(slots.p4, slots.mask).astype(np.float32)
