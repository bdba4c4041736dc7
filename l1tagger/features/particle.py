"""ParT-style per-particle features, sorted, padded/truncated to N particles with a mask."""

from __future__ import annotations

import numpy as np

from l1tagger.data.jetset import PID_FLAGS, JetSet
from l1tagger.errors import DataError
from l1tagger.physics import kinematics as kin

#: all features l1tagger can compute, in ParT's naming
ALL_FEATURES = (
    "part_pt_log",
    "part_e_log",
    "part_logptrel",
    "part_logerel",
    "part_deltaR",
    "part_deta",
    "part_dphi",
    "part_charge",
) + tuple(f"part_{f}" for f in PID_FLAGS)

#: named feature sets; "kin" has no particle-type information (used to ask whether attention finds leptons)
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "full": ALL_FEATURES,
    "kin": ALL_FEATURES[:7],
    "l1": ("part_logptrel", "part_deta", "part_dphi"),
}


def jet_axis(p4: np.ndarray, mask: np.ndarray):
    """Jet (pt, eta, phi, E) from the sum of its real constituents."""
    s = (p4 * mask[..., None]).sum(axis=1)
    px, py, pz, e = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
    return kin.pt(px, py), kin.eta(px, py, pz), kin.phi(px, py), e


def resolve_feature_names(features: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if isinstance(features, str):
        if features not in FEATURE_SETS:
            raise DataError(f"unknown feature set {features!r}; choose one of {sorted(FEATURE_SETS)}")
        return FEATURE_SETS[features]
    unknown = [f for f in features if f not in ALL_FEATURES]
    if unknown:
        raise DataError(f"unknown particle feature(s) {unknown}; known: {list(ALL_FEATURES)}")
    return tuple(features)


def particle_features(
    jets: JetSet,
    n_particles: int,
    features: str | tuple[str, ...] = "full",
    order: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Compute per-particle features.

    Returns ``X`` (n_jets, n_particles, F) float32 with zeros on padded slots and ``mask`` (n_jets, n_particles)
    bool. ``order`` is an optional (n_jets, P) permutation of the constituents (default: the stored pT order);
    jets with more than ``n_particles`` constituents are truncated after ordering.
    """
    jets.validate()
    names = resolve_feature_names(features)
    p4, mask, charge, pid = jets.p4, jets.mask, jets.charge, jets.pid
    if order is not None:
        order = np.asarray(order)
        if order.shape != mask.shape:
            raise DataError(f"order must have shape {mask.shape}, got {order.shape}")
        take = np.take_along_axis
        p4 = take(p4, order[..., None], axis=1)
        mask = take(mask, order, axis=1)
        charge = take(charge, order, axis=1)
        pid = take(pid, order[..., None], axis=1)
        # padded slots must stay at the end so truncation keeps real particles
        if (np.diff(mask.astype(np.int8), axis=1) > 0).any():
            raise DataError("order must keep padded particles after the real ones")

    P = p4.shape[1]
    if P < n_particles:  # pad
        pad = n_particles - P
        p4 = np.pad(p4, ((0, 0), (0, pad), (0, 0)))
        mask = np.pad(mask, ((0, 0), (0, pad)))
        charge = np.pad(charge, ((0, 0), (0, pad)))
        pid = np.pad(pid, ((0, 0), (0, pad), (0, 0)))
    p4, mask, charge, pid = p4[:, :n_particles], mask[:, :n_particles], charge[:, :n_particles], pid[:, :n_particles]

    jpt, jeta, jphi, je = jet_axis(jets.p4, jets.mask)  # axis from all constituents, before truncation
    px, py, pz, e = (p4[..., i].astype(np.float64) for i in range(4))
    ppt = kin.pt(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = {
            "part_pt_log": np.log(np.clip(ppt, kin.EPS, None)),
            "part_e_log": np.log(np.clip(e, kin.EPS, None)),
            "part_logptrel": np.log(np.clip(ppt / jpt[:, None], kin.EPS, None)),
            "part_logerel": np.log(np.clip(e / je[:, None], kin.EPS, None)),
            "part_deta": kin.eta(px, py, pz) - jeta[:, None],
            "part_dphi": kin.delta_phi(kin.phi(px, py), jphi[:, None]),
            "part_charge": charge.astype(np.float64),
        }
        cols["part_deltaR"] = np.hypot(cols["part_deta"], cols["part_dphi"])
        for i, flag in enumerate(PID_FLAGS):
            cols[f"part_{flag}"] = pid[..., i].astype(np.float64)
    X = np.stack([cols[n] for n in names], axis=-1)
    X = np.where(mask[..., None], X, 0.0).astype(np.float32)
    bad = ~np.isfinite(X)
    if bad.any():
        j, p, f = np.argwhere(bad)[0]
        raise DataError(f"non-finite feature {names[f]!r} for jet {j}, particle {p}")
    return X, mask
