"""Particle ordering strategies: functions JetSet -> (n_jets, P) permutation of the constituents, applied with the
truncation/padding to the model's N by ``l1tagger.features.layout.ordered_particles``.

Every permutation keeps real particles before padded slots (truncation to N then keeps real particles).

- ``pt``:      descending pT (the JetSet's stored order, recomputed here so it does not rely on it)
- ``dr``:      ascending Delta-R to the jet axis (the core first, wide-angle radiation last)
- ``cluster``: the Cambridge/Aachen clustering history (FastJet): a depth-first walk of the C/A tree that
               enters the harder (higher-pT) branch first, so particles of one subjet occupy contiguous slots and
               the hardest subjet comes first.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from l1tagger.data.jetset import JetSet
from l1tagger.errors import ConfigError
from l1tagger.physics import kinematics as kin


def _real_first(key: np.ndarray, mask: np.ndarray) -> np.ndarray:
    key = np.where(mask, key, np.inf)
    return np.argsort(key, axis=1, kind="stable")


def order_pt(jets: JetSet) -> np.ndarray:
    pt = kin.pt(jets.p4[..., 0].astype(np.float64), jets.p4[..., 1].astype(np.float64))
    return _real_first(-pt, jets.mask)


def order_dr(jets: JetSet) -> np.ndarray:
    p4 = jets.p4.astype(np.float64)
    mask = jets.mask
    _, jeta, jphi, _ = kin.jet_axis(p4, mask)
    px, py, pz = p4[..., 0], p4[..., 1], p4[..., 2]
    deta = kin.eta(px, py, pz) - jeta[:, None]
    dphi = kin.delta_phi(kin.phi(px, py), jphi[:, None])
    return _real_first(np.hypot(deta, dphi), mask)


def _ca_order_one(p4: np.ndarray) -> list[int]:
    import fastjet

    parts = []
    for i, (px, py, pz, e) in enumerate(p4):
        pj = fastjet.PseudoJet(float(px), float(py), float(pz), float(e))
        pj.set_user_index(i)
        parts.append(pj)
    jet_def = fastjet.JetDefinition(fastjet.cambridge_algorithm, 10.0)  # R large: one jet holds everything
    cs = fastjet.ClusterSequence(parts, jet_def)
    jets = sorted(cs.inclusive_jets(), key=lambda j: -j.pt())
    out: list[int] = []
    for top in jets:
        stack = [top]
        while stack:
            node = stack.pop()
            p1, p2 = fastjet.PseudoJet(), fastjet.PseudoJet()
            if node.has_parents(p1, p2):
                hard, soft = (p1, p2) if p1.pt() >= p2.pt() else (p2, p1)
                stack.append(soft)
                stack.append(hard)  # popped first: harder branch first
            else:
                out.append(node.user_index())
    return out


def order_cluster(jets: JetSet) -> np.ndarray:
    n, P = jets.p4.shape[:2]
    order = np.tile(np.arange(P), (n, 1))
    for j in range(n):
        m = int(jets.n_particles[j])
        if m > 1:
            seq = _ca_order_one(jets.p4[j, :m])
            if sorted(seq) != list(range(m)):
                raise ConfigError(f"C/A reclustering lost particles in jet {j}")
            order[j, :m] = seq
    return order


ORDERINGS: dict[str, Callable[[JetSet], np.ndarray]] = {"pt": order_pt, "dr": order_dr, "cluster": order_cluster}


def particle_order(jets: JetSet, strategy: str, n_keep: int | None = None) -> np.ndarray:
    """(n_jets, P) permutation of the constituents for ``strategy`` (a key of ORDERINGS).

    n_keep: the model's N. The ``n_keep`` highest-pT particles are selected first and only they are ordered by
    ``strategy`` (the rest follow in pT order and are truncated by the feature step), so every strategy feeds
    the model the same particles and differs only in their order. Without it, e.g. "dr" would keep the N
    particles closest to the axis instead of the N hardest.
    """
    if strategy not in ORDERINGS:
        raise ConfigError(f"ordering: {strategy!r} is not one of {sorted(ORDERINGS)}")
    P = jets.max_particles
    if n_keep is None or n_keep >= P or strategy == "pt":
        return ORDERINGS[strategy](jets)
    by_pt = order_pt(jets)
    head = by_pt[:, :n_keep]
    take = np.take_along_axis
    hard = JetSet(p4=take(jets.p4, head[..., None], axis=1), n_particles=np.minimum(jets.n_particles, n_keep),
                  charge=take(jets.charge, head, axis=1), pid=take(jets.pid, head[..., None], axis=1),
                  labels=jets.labels, class_names=jets.class_names)
    sub = ORDERINGS[strategy](hard)  # permutation of 0..n_keep-1, real first
    return np.concatenate([take(head, sub, axis=1), by_pt[:, n_keep:]], axis=1)
