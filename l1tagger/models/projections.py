"""Physics-initialised Linformer projections along the particle axis.

A Linformer projection E (k x N) is a *constant* matrix over particle slots, so any physics it carries enters
through the order in which particles fill the slots (``l1tagger.features.ordering``):

- ``blocks``:     row r is a soft (Gaussian-edged) average over the r-th contiguous block of N/k slots.
                  Under "cluster" ordering contiguous slots are C/A subjets, so this is a soft assignment to
                  subjets; under "dr" ordering the blocks are Delta-R rings around the jet axis; under "pt"
                  ordering they are pT-rank groups.
- ``log_blocks``: blocks growing geometrically (1, 2, 4, ... slots): the leading particles keep rows of their own
                  and the soft tail is merged, a prior matching the steeply falling pT spectrum.
- ``random``:     the Linformer default (PyTorch's linear initialisation), returned as None.

Rows are normalised to sum to 1 so projected keys/values keep the range of the originals (fixed-point friendly).
"""

from __future__ import annotations

import numpy as np

from l1tagger.errors import ConfigError


def _blocks(n: int, k: int) -> np.ndarray:
    width = n / k
    centres = (np.arange(k) + 0.5) * width
    slots = np.arange(n) + 0.5
    w = np.exp(-0.5 * ((slots[None, :] - centres[:, None]) / (0.5 * width)) ** 2)
    return w / w.sum(axis=1, keepdims=True)


def _log_blocks(n: int, k: int) -> np.ndarray:
    edges = [0]
    for r in range(1, k):
        e = int(round(n * (2**r - 1) / (2**k - 1)))
        edges.append(min(max(e, edges[-1] + 1), n - (k - r)))
    edges.append(n)
    w = np.zeros((k, n))
    for r in range(k):
        w[r, edges[r] : edges[r + 1]] = 1.0
    return w / w.sum(axis=1, keepdims=True)


PROJECTION_INITS = {"random": None, "blocks": _blocks, "log_blocks": _log_blocks}


def projection_matrix(kind: str, n: int, k: int) -> np.ndarray | None:
    """(k, n) float64 matrix for ``kind`` or None for the random default."""
    if kind not in PROJECTION_INITS:
        raise ConfigError(f"linformer_init: {kind!r} is not one of {sorted(PROJECTION_INITS)}")
    if not 0 < k <= n:
        raise ConfigError(f"linformer_k: need 0 < k <= n_particles, got k={k}, n={n}")
    fn = PROJECTION_INITS[kind]
    return None if fn is None else fn(n, k)
