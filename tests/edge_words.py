"""Edge-case L1 particle words of issue 15 for any number of particle slots (public test helper).

``edge_words(n)``: (n_jets, n, 5) l1ct words (pt, eta, phi, pid, valid): pT 0 and saturated, eta at both ends of its
range, phi wrapping at +-pi (differences of exactly +-pi included), identical particles (Delta R = 0), one real
particle, all padded, equal-pT seeds, every particle id, padded slots holding stale fields, valid particles of pT 0
only. n >= 4.
"""

from __future__ import annotations

import numpy as np


def word(pt=0, eta=0, phi=0, pid=0, valid=1) -> list[int]:
    return [pt, eta, phi, pid, valid]


def edge_words(n: int) -> np.ndarray:
    if n < 4:
        raise ValueError(f"edge_words needs n >= 4 particle slots, got {n}")
    pad = word(valid=0)
    jets = [
        [word(0, 5, 10, 1), word(16383, -7, 12, 3), word(16383, 40, -30, 2), word(1, 0, 0, 0)],
        [word(400, -2048, 100, 4), word(300, 2047, -100, 5), word(2, 2047, 719, 6), word(3, -2048, -720, 7)],
        [word(100, 0, 719, 3), word(90, 3, -720, 2), word(80, -3, 700, 1), word(70, 1, 0, 0)],
        [word(250, 17, -33, 3), word(250, 17, -33, 3), word(250, 17, -33, 3)],
        [word(12, -100, 640, 1)],
        [],
        [word(5, 1, 2, 0), word(9, -1, -2, 2), word(7, 9, 9, 7, valid=0), word(16383, -2048, 719, 5, valid=0)],
        [word(0, 0, 0, 0)] * 3,
    ]
    return np.array([j + [pad] * (n - len(j)) for j in jets], dtype=np.int64)
