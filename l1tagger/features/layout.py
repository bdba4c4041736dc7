"""The model's particle slots: a JetSet's constituents in the model's ordering, truncated/padded to N.

The one place that orders, truncates and pads constituents: the particle features, the pairwise features and the
per-particle kinematics of the interpretation all read their slots from ``ordered_particles``, so slot i means
the same particle everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from l1tagger.data.jetset import JetSet
from l1tagger.errors import DataError
from l1tagger.features.ordering import particle_order


@dataclass(frozen=True)
class OrderedParticles:
    """Constituents in the model's slots (n_jets, N, ...); padded slots are zero."""

    p4: np.ndarray  # (n, N, 4) float64 (px, py, pz, E)
    mask: np.ndarray  # (n, N) bool, True on a real particle
    charge: np.ndarray  # (n, N), the JetSet's dtype
    pid: np.ndarray  # (n, N, len(PID_FLAGS)), the JetSet's dtype
    order: np.ndarray  # (n, N) int64: index of the stored constituent in each slot, -1 on padded slots


def check_order(order, mask: np.ndarray) -> np.ndarray:
    """``order`` as an int64 (n_jets, P) array of per-jet permutations of 0..P-1 that keep real particles first
    (truncation then keeps real particles); DataError naming the jet otherwise."""
    order = np.asarray(order)
    if order.shape != mask.shape:
        raise DataError(f"order must have shape {mask.shape}, got {order.shape}")
    if not np.issubdtype(order.dtype, np.integer):
        raise DataError(f"order must hold integer particle indices, got dtype {order.dtype}")
    order = order.astype(np.int64)
    bad = np.flatnonzero((np.sort(order, axis=1) != np.arange(mask.shape[1])).any(axis=1))
    if bad.size:
        raise DataError(f"order of jet {int(bad[0])} is not a permutation of 0..{mask.shape[1] - 1}")
    bad = np.flatnonzero((np.diff(np.take_along_axis(mask, order, axis=1).astype(np.int8), axis=1) > 0).any(axis=1))
    if bad.size:
        raise DataError(f"order of jet {int(bad[0])} must keep padded particles after the real ones")
    return order


def ordered_particles(jets: JetSet, n_particles: int, ordering: str | np.ndarray | None = None) -> OrderedParticles:
    """The constituents of ``jets`` in ``ordering``, truncated to the first ``n_particles`` and zero-padded up to it.

    ordering: None (the stored order), a strategy name (a key of ``l1tagger.features.ordering.ORDERINGS``,
              selecting the N hardest particles and ordering them, see ``particle_order``), or a precomputed
              (n_jets, P) permutation such as ``particle_order`` returns.
    """
    if int(n_particles) < 1:
        raise DataError(f"n_particles (the model's particle slots) must be positive, got {n_particles}")
    n_particles = int(n_particles)
    mask = jets.mask
    if ordering is None:
        order = np.broadcast_to(np.arange(mask.shape[1], dtype=np.int64), mask.shape)
    elif isinstance(ordering, str):
        order = check_order(particle_order(jets, ordering, n_keep=n_particles), mask)
    else:
        order = check_order(ordering, mask)

    keep = min(mask.shape[1], n_particles)
    pad = n_particles - keep

    def padded(a: np.ndarray) -> np.ndarray:
        return np.pad(a, [(0, 0), (0, pad)] + [(0, 0)] * (a.ndim - 2)) if pad else a

    def slots(a: np.ndarray) -> np.ndarray:
        index = order[:, :keep].reshape(order.shape[0], keep, *([1] * (a.ndim - 2)))
        return padded(np.take_along_axis(a, index, axis=1))

    real = slots(mask)
    return OrderedParticles(p4=slots(jets.p4).astype(np.float64), mask=real, charge=slots(jets.charge),
                            pid=slots(jets.pid), order=np.where(real, padded(order[:, :keep]), -1))
