"""Small, fast, *labelled toy* jets for unit tests of shapes and plumbing (not for physics claims).

Class c jets have c+1 hard prongs; constituents are massless and scattered around the prong axes, so the
classes are separable by substructure. Real physics comes from ``l1tagger.data.generate`` (Pythia 8 + FastJet).
"""

from __future__ import annotations

import numpy as np

from l1tagger.data.jetset import PID_FLAGS, JetSet


def toy_jets(n_jets: int = 256, max_particles: int = 24, n_classes: int = 3, seed: int = 0) -> JetSet:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_jets)
    n_part = rng.integers(3, max_particles + 1, n_jets)
    p4 = np.zeros((n_jets, max_particles, 4), np.float64)
    charge = np.zeros((n_jets, max_particles), np.float32)
    pid = np.zeros((n_jets, max_particles, len(PID_FLAGS)), np.uint8)
    for j in range(n_jets):
        n = n_part[j]
        prongs = labels[j] + 1
        eta0, phi0 = rng.uniform(-1.5, 1.5), rng.uniform(-np.pi, np.pi)
        axes = rng.normal(0, 0.25, size=(prongs, 2))
        which = rng.integers(0, prongs, n)
        eta = eta0 + axes[which, 0] + rng.normal(0, 0.04, n)
        phi = phi0 + axes[which, 1] + rng.normal(0, 0.04, n)
        pt = np.sort(rng.exponential(40.0, n) + 1.0)[::-1]
        p4[j, :n, 0] = pt * np.cos(phi)
        p4[j, :n, 1] = pt * np.sin(phi)
        p4[j, :n, 2] = pt * np.sinh(eta)
        p4[j, :n, 3] = pt * np.cosh(eta)
        kinds = rng.integers(0, len(PID_FLAGS), n)
        pid[j, np.arange(n), kinds] = 1
        charge[j, :n] = np.where(np.isin(kinds, (0, 3, 4)), rng.choice([-1.0, 1.0], n), 0.0)
    names = [f"toy{c}" for c in range(n_classes)]
    return JetSet(p4=p4, n_particles=n_part, charge=charge, pid=pid, labels=labels, class_names=names,
                  meta={"source": "toy", "seed": seed}).validate()
