"""hls4ml LHC jet dataset HDF5 files (150 particles): ``jetConstituentList`` (N, 150, 16), ``jets`` (N, 59)
with column names in ``particleFeatureNames`` / ``jetFeatureNames``. Columns are resolved by name (the published
files prefix particle features with ``j1_``); labels are the one-hot columns j_g, j_q, j_w, j_z, j_t.
Charge and particle type are not in these files and are left 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l1tagger.data.jetset import JetSet
from l1tagger.errors import DataError

PARTICLE_P4 = ("px", "py", "pz", "e")
LABELS = (("j_g", "g"), ("j_q", "q"), ("j_w", "W"), ("j_z", "Z"), ("j_t", "t"))
#: JetSet field -> candidate column names in jetFeatureNames (first present wins)
JET_COLUMNS = {"pt": ("j_pt",), "eta": ("j_eta",), "mass": ("j_mass",), "sdmass": ("j_mass_mmdt",),
               "tau1": ("j_tau1_b1",), "tau2": ("j_tau2_b1",), "tau3": ("j_tau3_b1",)}
REQUIRED = ("jetConstituentList", "particleFeatureNames", "jets", "jetFeatureNames")


def detect(path: Path) -> bool:
    import h5py

    if not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as f:
        return "jetConstituentList" in f


def _names(ds) -> list[str]:
    out = []
    for x in ds[()]:
        s = x.decode() if isinstance(x, bytes) else str(x)
        out.append(s.strip())
    return out


def _particle_column(names: list[str], feature: str, path: Path) -> int:
    for i, n in enumerate(names):
        if n == feature or (n.startswith("j1_") and n[3:] == feature):
            return i
    raise DataError(f"{path}: particleFeatureNames has no column {feature!r} (have: {', '.join(names)})")


def read(path: Path, max_particles: int | None = None, max_jets: int | None = None) -> JetSet:
    import h5py

    from l1tagger.data.io import compact, jet_kinematics, one_hot_labels, real_particles, sort_padded

    with h5py.File(path, "r") as f:
        for name in REQUIRED:
            if name not in f:
                raise DataError(f"{path}: hls4ml LHC jet file is missing dataset {name!r}")
        pnames, jnames = _names(f["particleFeatureNames"]), _names(f["jetFeatureNames"])
        cols = [_particle_column(pnames, c, path) for c in PARTICLE_P4]
        const = np.asarray(f["jetConstituentList"][:max_jets], dtype=np.float64)
        jets = np.asarray(f["jets"][:max_jets], dtype=np.float64)
    if const.ndim != 3 or const.shape[2] != len(pnames):
        raise DataError(f"{path}: jetConstituentList has shape {const.shape}, expected (N, P, {len(pnames)})")
    if jets.ndim != 2 or jets.shape[1] != len(jnames):
        raise DataError(f"{path}: jets has shape {jets.shape}, expected (N, {len(jnames)})")
    jidx = {n: i for i, n in enumerate(jnames)}
    for col, _ in LABELS:
        if col not in jidx:
            raise DataError(f"{path}: jetFeatureNames has no label column {col!r}")
    p4 = const[..., cols]
    real = real_particles(p4, tuple(pnames[c] for c in cols))
    n = real.sum(axis=1)
    p4 = compact(p4, real)
    kin = jet_kinematics(p4)  # from all constituents, before any truncation
    p4, n, charge, pid = sort_padded(p4, n, None, None, max_particles)
    labels = one_hot_labels(jets[:, [jidx[c] for c, _ in LABELS]], [c for c, _ in LABELS])
    jet = {"phi": kin["phi"]}
    for field, cands in JET_COLUMNS.items():
        col = next((c for c in cands if c in jidx), None)
        jet[field] = jets[:, jidx[col]].astype(np.float32) if col else kin.get(field)
    jet = {k: v for k, v in jet.items() if v is not None}
    return JetSet(p4=p4, n_particles=n, charge=charge, pid=pid, labels=labels,
                  class_names=[name for _, name in LABELS], jet=jet,
                  meta={"source": "hls4ml LHC jets HDF5", "pid_flags_known": False}).validate()

