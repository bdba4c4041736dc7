"""Dataset access for the commands: a jet file or a toy set by name, class-balanced subsets, seeded splits."""

from __future__ import annotations

import numpy as np

from l1tagger.data.jetset import JetSet
from l1tagger.errors import DataError


def load_dataset(spec: str, max_jets: int | None = None, seed: int = 0) -> JetSet:
    """A file any reader loads (``l1tagger.data.io.load_jets``), or ``toy:N[:C]`` = N toy jets of C classes
    (``l1tagger.data.synthetic``, for smoke tests only).

    max_jets: keep at most this many jets, a class-balanced random subset drawn with ``seed``
              (``JetSet.sample``), never the first rows: files are often stored class by class.
    """
    if max_jets is not None and max_jets <= 0:
        raise DataError(f"the number of jets to use (--max-jets / --n-jets) must be positive, got {max_jets}")
    if spec.startswith("toy:"):
        from l1tagger.data.synthetic import toy_jets

        parts = spec.split(":")[1:]
        try:
            n = int(parts[0])
            c = int(parts[1]) if len(parts) > 1 else 3
        except (ValueError, IndexError):
            raise DataError(f"toy dataset spec must be toy:N[:C], got {spec!r}") from None
        if n <= 0 or c < 2:
            raise DataError(f"toy dataset spec needs N > 0 and C >= 2, got {spec!r}")
        jets = toy_jets(n_jets=n, max_particles=32, n_classes=c, seed=0)
    else:
        from l1tagger.data.io import load_jets

        jets = load_jets(spec)
    return jets.sample(max_jets, seed)


def split_indices(n: int, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Sorted index arrays of a random split of n items (fractions of the whole; if they sum to 1 the last
    part takes the rounding remainder)."""
    if any(f <= 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise DataError(f"split fractions must be positive and sum to <= 1, got {fractions}")
    perm = np.random.default_rng(seed).permutation(n)
    cuts = np.cumsum([int(round(f * n)) for f in fractions[:-1]])
    parts = np.split(perm, cuts)
    if len(fractions) and sum(fractions) < 1 - 1e-9:
        parts[-1] = parts[-1][: int(round(fractions[-1] * n))]
    if any(len(p) == 0 for p in parts):
        raise DataError(f"{n} jets are too few to split into {fractions}")
    return [np.sort(p) for p in parts]


def split(jets: JetSet, fractions: tuple[float, ...], seed: int) -> list[JetSet]:
    """Random split of ``jets`` with a fixed seed (see split_indices)."""
    return [jets.subset(p) for p in split_indices(len(jets), fractions, seed)]
