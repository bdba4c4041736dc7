"""The one in-memory jet representation every reader produces and every later step consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from l1tagger.errors import DataError

#: particle-type flags, in this order, in ``JetSet.pid``
PID_FLAGS = ("isChargedHadron", "isNeutralHadron", "isPhoton", "isElectron", "isMuon")

#: per-jet quantities a JetSet may carry (readers fill what their source has)
JET_FIELDS = ("pt", "eta", "phi", "mass", "sdmass", "tau1", "tau2", "tau3")


def integer_array(values, dtype, what: str) -> np.ndarray:
    """``values`` as an integer array of ``dtype``; DataError naming the first jet whose value is not a whole
    number (a fractional label or particle count must not be silently truncated) or does not fit ``dtype``."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iubf":
        raise DataError(f"{what} values must be numbers, got dtype {arr.dtype}")
    if np.can_cast(arr.dtype, dtype, casting="safe"):  # every value fits: nothing to check
        return arr.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    with np.errstate(invalid="ignore"):
        fraction = ~np.isfinite(arr) | (np.floor(arr) != arr) if arr.dtype.kind == "f" else np.zeros(arr.shape, bool)
        outside = ~fraction & ((arr < info.min) | (arr > info.max))
    for bad, problem in ((fraction, "not a whole number"), (outside, f"outside [{info.min}, {info.max}]")):
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            where = " of jet " + ", particle ".join(str(i) for i in first[:2]) if first else ""
            raise DataError(f"{what}{where} is {arr[first].item()!r}, {problem}")
    return arr.astype(dtype, copy=False)


@dataclass
class JetSet:
    """A set of labelled jets with zero-padded constituent arrays.

    p4:          (n_jets, P, 4) float32, (px, py, pz, E) in GeV, sorted by pT descending, zero padded
    n_particles: (n_jets,) int32, number of real constituents per jet (<= P)
    charge:      (n_jets, P) float32, electric charge (0 where unknown)
    pid:         (n_jets, P, 5) uint8, flags in PID_FLAGS order (all 0 where unknown)
    labels:      (n_jets,) int64 class index into class_names
    class_names: class names, e.g. ["g", "q", "W", "Z", "t"]
    jet:         per-jet arrays keyed by JET_FIELDS (subset)
    meta:        free-form provenance (generator settings, seed, versions, source file)
    """

    p4: np.ndarray
    n_particles: np.ndarray
    charge: np.ndarray
    pid: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    jet: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.p4 = np.asarray(self.p4, dtype=np.float32)
        self.n_particles = integer_array(self.n_particles, np.int32, "n_particles")
        self.charge = np.asarray(self.charge, dtype=np.float32)
        self.pid = integer_array(self.pid, np.uint8, "particle-type flag")
        self.labels = integer_array(self.labels, np.int64, "label")
        self.class_names = [str(c) for c in self.class_names]
        self.jet = {k: np.asarray(v) for k, v in self.jet.items()}

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.p4.shape[0])

    @property
    def max_particles(self) -> int:
        return int(self.p4.shape[1])

    @property
    def mask(self) -> np.ndarray:
        """(n_jets, P) bool, True for real constituents."""
        return np.arange(self.max_particles)[None, :] < self.n_particles[:, None]

    def subset(self, index) -> "JetSet":
        index = np.asarray(index)
        return JetSet(
            p4=self.p4[index],
            n_particles=self.n_particles[index],
            charge=self.charge[index],
            pid=self.pid[index],
            labels=self.labels[index],
            class_names=list(self.class_names),
            jet={k: v[index] for k, v in self.jet.items()},
            meta=dict(self.meta),
        )

    @staticmethod
    def concatenate(sets: list["JetSet"]) -> "JetSet":
        if not sets:
            raise DataError("cannot concatenate an empty list of JetSets")
        names = sets[0].class_names
        for s in sets[1:]:
            if s.class_names != names:
                raise DataError(f"class names differ: {names} vs {s.class_names}")
        P = max(s.max_particles for s in sets)

        def pad(a, axis_len):
            widths = [(0, 0)] * a.ndim
            widths[1] = (0, axis_len - a.shape[1])
            return np.pad(a, widths)

        keys = set.intersection(*(set(s.jet) for s in sets))
        return JetSet(
            p4=np.concatenate([pad(s.p4, P) for s in sets]),
            n_particles=np.concatenate([s.n_particles for s in sets]),
            charge=np.concatenate([pad(s.charge, P) for s in sets]),
            pid=np.concatenate([pad(s.pid, P) for s in sets]),
            labels=np.concatenate([s.labels for s in sets]),
            class_names=list(names),
            jet={k: np.concatenate([s.jet[k] for s in sets]) for k in sorted(keys)},
            meta=dict(sets[0].meta),
        )

    def sample(self, n: int | None, seed: int) -> "JetSet":
        """At most ``n`` jets, stratified by class, in file order (see :meth:`sample_indices`)."""
        if n is None or n >= len(self):
            return self
        return self.subset(self.sample_indices(n, seed))

    def sample_indices(self, n: int | None, seed: int) -> np.ndarray:
        """Indices of at most ``n`` jets drawn at random with every class kept in proportion (stratified), in file order.

        The one way to take a subset of a jet count (``--max-jets``, ``--n-jets``): files are often stored class by
        class, so the first ``n`` rows would hold one class only. Each class present gets
        ``n * count / len(self)`` jets (largest remainders round up, and every class present keeps at least one
        jet when ``n`` allows it); which jets is decided by ``numpy.random.default_rng(seed)``. ``n`` None or
        >= len(self) gives every index.
        """
        if n is None or n >= len(self):
            return np.arange(len(self))
        if n <= 0:
            raise DataError(f"the number of jets to sample must be positive, got {n}")
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        present = np.flatnonzero(counts)
        exact = n * counts / len(self)
        take = np.floor(exact).astype(np.int64)
        if n >= present.size:  # every class present keeps at least one jet
            take[present] = np.maximum(take[present], 1)
        while take.sum() > n:  # the minimum of one jet overshot: take back where it costs least, never below 1
            take[np.argmax(np.where(take > 1, take - exact, -np.inf))] -= 1
        rest = exact - take
        rest[take >= counts] = -np.inf
        for c in np.argsort(-rest, kind="stable")[: n - int(take.sum())]:
            take[c] += 1
        rng = np.random.default_rng(seed)
        index = [rng.choice(np.flatnonzero(self.labels == c), int(take[c]), replace=False) for c in present]
        return np.sort(np.concatenate(index))

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(c) for name, c in zip(self.class_names, counts)}

    # ------------------------------------------------------------- validation
    def validate(self) -> "JetSet":
        """Raise DataError naming the first problem found; return self when the set is sound."""
        n, P = self.p4.shape[:2]
        if self.p4.ndim != 3 or self.p4.shape[2] != 4:
            raise DataError(f"p4 must have shape (n_jets, P, 4), got {self.p4.shape}")
        for name, arr, shape in (
            ("n_particles", self.n_particles, (n,)),
            ("charge", self.charge, (n, P)),
            ("pid", self.pid, (n, P, len(PID_FLAGS))),
            ("labels", self.labels, (n,)),
        ):
            if arr.shape != shape:
                raise DataError(f"{name} must have shape {shape}, got {arr.shape}")
        bad = ~np.isfinite(self.p4)
        if bad.any():
            j = int(np.argwhere(bad)[0][0])
            raise DataError(f"non-finite (NaN/inf) particle 4-vector in jet {j}")
        for key, arr in self.jet.items():
            if arr.shape[:1] != (n,):
                raise DataError(f"jet field {key!r} has {arr.shape[0]} entries for {n} jets")
            if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
                j = int(np.argwhere(~np.isfinite(arr))[0][0])
                raise DataError(f"non-finite jet field {key!r} in jet {j}")
        empty = np.flatnonzero(self.n_particles <= 0)
        if empty.size:
            raise DataError(f"{empty.size} jet(s) have zero particles (first: jet {int(empty[0])})")
        if (self.n_particles > P).any():
            raise DataError(f"n_particles exceeds the padded length {P}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise DataError(f"labels outside [0, {len(self.class_names)}) for classes {self.class_names}")
        return self
