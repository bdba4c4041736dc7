"""ParT-style per-particle features in the model's slots (``l1tagger.features.layout``) with a mask."""

from __future__ import annotations

import numpy as np

from l1tagger.data.jetset import PID_FLAGS, JetSet
from l1tagger.errors import DataError
from l1tagger.features.layout import ordered_particles
from l1tagger.physics import kinematics as kin
from l1tagger.physics.kinematics import jet_axis

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
    order: str | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Compute per-particle features.

    Returns ``X`` (n_jets, n_particles, F) float32 with zeros on padded slots and ``mask`` (n_jets, n_particles)
    bool. ``order``: the particle ordering, as ``ordered_particles`` takes it (None = the stored order, a
    strategy name, or an (n_jets, P) permutation); jets with more than ``n_particles`` constituents are truncated
    after ordering.
    """
    jets.validate()
    names = resolve_feature_names(features)
    slots = ordered_particles(jets, n_particles, order)
    p4, mask, charge, pid = slots.p4, slots.mask, slots.charge, slots.pid

    jpt, jeta, jphi, je = jet_axis(jets.p4, jets.mask)  # axis from all constituents, before truncation
    px, py, pz, e = (p4[..., i] for i in range(4))
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
