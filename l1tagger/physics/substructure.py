"""Jet substructure: soft-drop mass and N-subjettiness, vectorised over many jets.

The PyPI ``fastjet`` package (3.5.x) does not expose fastjet-contrib through its classic SWIG interface, but its
awkward-array multi-event interface ships compiled contrib ``SoftDrop`` and ``Nsubjettiness``. We use those
(C++, one call for a whole batch of jets) and fix every convention here, in one place:

* soft drop: Cambridge/Aachen reclustering of the jet constituents (R = 999, i.e. the whole jet is one C/A
  jet), then SoftDrop(beta, z_cut, R0) with the ``scalar_z`` symmetry measure and ``larger_pt`` recursion;
  defaults z_cut = 0.1, beta = 0, R0 = 0.8 (beta = 0 is the modified mass-drop tagger, mMDT).
* N-subjettiness: ``NormalizedMeasure(beta, R0)`` with exclusive-kT axes (``KT_Axes``: kT reclustering to
  exactly N exclusive subjets, no one-pass minimisation), beta = 1, R0 = 0.8, for N = 1..n_max:

      tau_N = sum_i pT_i min_k dR(i, axis_k)  /  (R0 * sum_i pT_i),   dR in (rapidity, phi)

  A jet with fewer than N constituents has tau_N = 0.

Inputs are zero-padded constituent arrays (n_jets, P, 4) in (px, py, pz, E) with a count per jet, exactly the
layout of :class:`l1tagger.data.jetset.JetSet`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from l1tagger.errors import DataError


@dataclass(frozen=True)
class SubstructureConfig:
    """Parameters of the substructure observables (recorded in dataset metadata).

    sd_zcut, sd_beta, sd_r0:  soft-drop symmetry cut, angular exponent and characteristic radius
    tau_beta, tau_r0:         N-subjettiness angular exponent and normalisation radius
    tau_axes:                 fastjet-contrib axes definition ("KT_Axes" = exclusive kT axes)
    n_tau:                    compute tau_1 .. tau_n_tau
    """

    sd_zcut: float = 0.1
    sd_beta: float = 0.0
    sd_r0: float = 0.8
    tau_beta: float = 1.0
    tau_r0: float = 0.8
    tau_axes: str = "KT_Axes"
    n_tau: int = 3

    def to_dict(self) -> dict:
        return asdict(self)


def _as_jagged(p4: np.ndarray, n_particles: np.ndarray):
    """Zero-padded (n_jets, P, 4) -> awkward array of records (px, py, pz, E), one list per jet."""
    import awkward as ak

    p4 = np.asarray(p4, dtype=np.float64)
    n_particles = np.asarray(n_particles, dtype=np.int64)
    if p4.ndim != 3 or p4.shape[-1] != 4:
        raise DataError(f"constituents must have shape (n_jets, P, 4), got {p4.shape}")
    if n_particles.shape != p4.shape[:1]:
        raise DataError(f"n_particles has shape {n_particles.shape} for {p4.shape[0]} jets")
    if (n_particles <= 0).any():
        raise DataError(f"jet {int(np.flatnonzero(n_particles <= 0)[0])} has zero particles")
    if (n_particles > p4.shape[1]).any():
        raise DataError("n_particles exceeds the padded length of the constituent array")
    mask = np.arange(p4.shape[1])[None, :] < n_particles[:, None]
    flat = p4[mask]
    if not np.isfinite(flat).all():
        raise DataError("non-finite (NaN/inf) constituent 4-vector")
    content = ak.zip({"px": flat[:, 0], "py": flat[:, 1], "pz": flat[:, 2], "E": flat[:, 3]}, with_name="Momentum4D")
    return ak.unflatten(content, n_particles)


_BANNER_DONE = False


def quiet_fastjet() -> None:
    """Print FastJet's once-per-process banner into /dev/null (it goes straight to the C++ stdout)."""
    global _BANNER_DONE
    if _BANNER_DONE:
        return
    import os
    import sys

    import awkward as ak
    import fastjet

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            one = ak.Array([[{"px": 1.0, "py": 0.0, "pz": 0.0, "E": 1.0}]])
            fastjet.ClusterSequence(one, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4)).inclusive_jets()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _BANNER_DONE = True


def _cluster(jagged, algorithm: str):
    import fastjet

    quiet_fastjet()

    algo = {"ca": fastjet.cambridge_algorithm, "kt": fastjet.kt_algorithm}[algorithm]
    return fastjet.ClusterSequence(jagged, fastjet.JetDefinition(algo, 999.0))


def soft_drop_mass(p4: np.ndarray, n_particles: np.ndarray, cfg: SubstructureConfig = SubstructureConfig()) -> np.ndarray:
    """Soft-drop groomed mass (GeV) of each jet, shape (n_jets,), with FastJet's sign convention.

    FastJet's ``PseudoJet::m()`` returns -sqrt(-m^2) when m^2 < 0, which happens when a jet is groomed to one
    (nearly) massless particle stored in float32; this function keeps that convention (it is compared against
    FastJet directly). The physical per-jet field, ``substructure()["sdmass"]``, is clamped at 0.
    """
    if len(p4) == 0:
        return np.zeros(0)
    seq = _cluster(_as_jagged(p4, n_particles), "ca")
    sd = seq.exclusive_jets_softdrop_grooming(njets=1, beta=cfg.sd_beta, symmetry_cut=cfg.sd_zcut, R0=cfg.sd_r0)
    return np.asarray(sd.msoftdrop, dtype=np.float64)


def nsubjettiness(p4: np.ndarray, n_particles: np.ndarray, cfg: SubstructureConfig = SubstructureConfig()) -> np.ndarray:
    """N-subjettiness tau_1..tau_{n_tau} of each jet, shape (n_jets, n_tau)."""
    import awkward as ak

    if len(p4) == 0:
        return np.zeros((0, cfg.n_tau))
    seq = _cluster(_as_jagged(p4, n_particles), "kt")
    taus = seq.njettiness(
        measure_definition="NormalizedMeasure",
        axes_definition=cfg.tau_axes,
        njets=list(range(1, cfg.n_tau + 1)),
        beta=cfg.tau_beta,
        R0=cfg.tau_r0,
    )
    out = np.asarray(ak.to_numpy(taus), dtype=np.float64).reshape(len(p4), cfg.n_tau)
    return out


def substructure(p4: np.ndarray, n_particles: np.ndarray, cfg: SubstructureConfig = SubstructureConfig()) -> dict[str, np.ndarray]:
    """All per-jet substructure fields: {"sdmass", "tau1", ..., "tau{n_tau}"} (float32 arrays).

    sdmass is clamped at 0: a mass is never negative, whatever the sign FastJet gives a groomed jet whose
    float32 m^2 rounds below 0 (see ``soft_drop_mass``; the ungroomed mass in
    ``l1tagger.data.io.jet_kinematics`` is clamped the same way).
    """
    out = {"sdmass": np.clip(soft_drop_mass(p4, n_particles, cfg), 0.0, None).astype(np.float32)}
    taus = nsubjettiness(p4, n_particles, cfg)
    for k in range(cfg.n_tau):
        out[f"tau{k + 1}"] = taus[:, k].astype(np.float32)
    return out


def tau_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """tau_{N}/tau_{N-1} with 0 where the denominator vanishes (single-particle jets)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)
