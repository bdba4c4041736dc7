"""Subjet axes from FastJet reclustering and the attention fraction of a map.

Subjets: each jet's real constituents are reclustered with FastJet into exactly ``n_subjets`` exclusive subjets
(exclusive kT by default, with R = 1000 so the beam distance never wins and the result is the pure pairwise
kT merging history, as for N-subjettiness kT axes). A jet with fewer constituents than ``n_subjets`` gets as many
subjets as it has constituents; the missing ones are flagged invalid. All jets are clustered in one vectorised
FastJet call through its awkward-array interface.

Attention fraction of a map m (any non-negative (size, size) map in the image frame — rollout attention, or the
jet image itself, which gives the pT fraction): the regions of interest are discs of radius ``radius`` (in units of
ΔR in the image frame, i.e. η'–φ') around the subjet axes; a pixel belongs to the union of the discs when its
centre does. fraction = Σ_inside m / Σ m, in [0, 1]. The area fraction of the same region is what a uniform map
would score, the baseline against which an attention fraction means something.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from l1tagger.data.jetset import JetSet
from l1tagger.errors import ConfigError, DataError
from l1tagger.physics import kinematics as kin
from l1tagger.physics.substructure import quiet_fastjet
from l1tagger.vit.images import JetFrame, JetImageConfig, pixel_centres

#: reclustering algorithms for subjets (exclusive mode); name -> fastjet attribute
SUBJET_ALGORITHMS = {"kt": "kt_algorithm", "cambridge": "cambridge_algorithm"}
EXCLUSIVE_R = 1000.0  # fastjet.JetDefinition.max_allowable_R


@dataclass
class Subjets:
    """Exclusive subjets of each jet, sorted by pT descending; arrays of shape (n_jets, n_subjets)."""

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    valid: np.ndarray  # bool; False where a jet had fewer constituents than n_subjets


def _fastjet():
    import fastjet

    return fastjet


def recluster_subjets(jets: JetSet, n_subjets: int = 2, algorithm: str = "kt") -> Subjets:
    """Recluster every jet's constituents into ``n_subjets`` exclusive subjets with FastJet."""
    import awkward as ak

    if algorithm not in SUBJET_ALGORITHMS:
        raise ConfigError(f"subjet algorithm: {algorithm!r} is not one of {sorted(SUBJET_ALGORITHMS)}")
    if isinstance(n_subjets, bool) or not isinstance(n_subjets, int) or n_subjets < 1:
        raise ConfigError(f"n_subjets: must be a positive integer, got {n_subjets!r}")
    jets.validate()
    fj = _fastjet()
    quiet_fastjet()  # FastJet's once-per-process banner goes to the C++ stdout otherwise
    mask = jets.mask
    flat = jets.p4[mask].astype(np.float64)
    counts = jets.n_particles.astype(np.int64)
    events = ak.zip({k: ak.unflatten(flat[:, i], counts) for i, k in enumerate(("px", "py", "pz", "E"))})
    jetdef = fj.JetDefinition(getattr(fj, SUBJET_ALGORITHMS[algorithm]), EXCLUSIVE_R)
    with warnings.catch_warnings():
        # fastjet-python compares the JetDefinition (not its algorithm) with kt/C-A and warns spuriously
        warnings.filterwarnings("ignore", message="dcut and exclusive jets for jet-finders other than kt")
        sub = fj.ClusterSequence(events, jetdef).exclusive_jets_up_to(n_subjets)
    n = len(jets)
    got = ak.to_numpy(ak.num(sub)).astype(np.int64)
    padded = ak.fill_none(ak.pad_none(sub, n_subjets, clip=True), {"px": 0.0, "py": 0.0, "pz": 0.0, "E": 0.0})
    px, py, pz = (ak.to_numpy(padded[k]).astype(np.float64).reshape(n, n_subjets) for k in ("px", "py", "pz"))
    valid = np.arange(n_subjets)[None, :] < got[:, None]
    pt = np.where(valid, kin.pt(px, py), 0.0)
    eta = np.where(valid, kin.eta(px, py, pz), np.nan)
    phi = np.where(valid, kin.phi(px, py), np.nan)
    order = np.argsort(-pt, axis=1, kind="stable")
    take = np.take_along_axis
    return Subjets(take(pt, order, 1), take(eta, order, 1), take(phi, order, 1), take(valid, order, 1))


def subjet_image_coords(subjets: Subjets, frame: JetFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Subjet axes in the image frame: x, y of shape (n_jets, n_subjets) and the valid mask."""
    eta = np.where(subjets.valid, subjets.eta, 0.0)
    phi = np.where(subjets.valid, subjets.phi, 0.0)
    x, y = frame.transform(eta, phi)
    return x, y, subjets.valid


def region_masks(x: np.ndarray, y: np.ndarray, valid: np.ndarray, radius: float, cfg: JetImageConfig) -> np.ndarray:
    """(n_jets, size, size) bool: pixel centres within ``radius`` of any valid subjet axis (x, y)."""
    if not (np.isfinite(radius) and radius > 0):
        raise ConfigError(f"radius: must be a positive number, got {radius!r}")
    c = pixel_centres(cfg)
    cy, cx = c[:, None], c[None, :]  # row = y, column = x
    d2 = (cx[None, None] - x[:, :, None, None]) ** 2 + (cy[None, None] - y[:, :, None, None]) ** 2
    inside = (d2 <= radius * radius) & valid[:, :, None, None]
    return inside.any(axis=1)


def attention_fraction(maps: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Share of each map inside its region, (n_jets,) in [0, 1]; maps must be non-negative with a positive sum."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.shape != regions.shape:
        raise DataError(f"maps {maps.shape} and regions {regions.shape} differ in shape")
    if (maps < 0).any() or not np.isfinite(maps).all():
        raise DataError("attention maps must be finite and non-negative")
    total = maps.sum(axis=(1, 2))
    if (total <= 0).any():
        raise DataError(f"{int((total <= 0).sum())} map(s) have zero total attention (first: jet "
                        f"{int(np.flatnonzero(total <= 0)[0])})")
    return np.clip((maps * regions).sum(axis=(1, 2)) / total, 0.0, 1.0)


def area_fraction(regions: np.ndarray) -> np.ndarray:
    """Share of the image area inside each region (the score of a uniform map)."""
    return regions.reshape(len(regions), -1).mean(axis=1)
