"""Top-tagging reference dataset (pandas HDF5, key ``table``): columns E_i, PX_i, PY_i, PZ_i for i = 0..199
(zero padded) and the label ``is_signal_new`` (1 = top, 0 = QCD). Charge and particle type are unknown (0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l1tagger.data.jetset import JetSet
from l1tagger.errors import DataError

KEY = "table"
LABEL = "is_signal_new"
CLASS_NAMES = ["QCD", "top"]


def detect(path: Path) -> bool:
    import h5py

    if not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as f:
        return KEY in f and "jetConstituentList" not in f and f.attrs.get("format") != "l1tagger-jets"


def read(path: Path, max_particles: int | None = None, max_jets: int | None = None) -> JetSet:
    import pandas as pd

    from l1tagger.data.io import compact, jet_kinematics, real_particles, sort_padded

    try:
        df = pd.read_hdf(path, key=KEY, stop=max_jets)
    except (TypeError, ValueError):  # 'fixed' format stores do not support stop=
        df = pd.read_hdf(path, key=KEY)
    except KeyError:
        raise DataError(f"{path}: no pandas key {KEY!r}") from None
    if max_jets is not None:
        df = df.iloc[:max_jets]
    if LABEL not in df.columns:
        raise DataError(f"{path}: top-tagging table is missing column {LABEL!r}")
    n_const = 0
    while f"E_{n_const}" in df.columns:
        n_const += 1
    if n_const == 0:
        raise DataError(f"{path}: top-tagging table is missing column 'E_0'")
    cols = []
    for comp in ("PX", "PY", "PZ", "E"):
        names = [f"{comp}_{i}" for i in range(n_const)]
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise DataError(f"{path}: top-tagging table is missing column {missing[0]!r}")
        cols.append(df[names].to_numpy(np.float64))
    p4 = np.stack(cols, axis=-1)
    real = real_particles(p4, ("PX", "PY", "PZ", "E"))
    n = real.sum(axis=1)
    p4 = compact(p4, real)
    jet = jet_kinematics(p4)  # from all constituents, before any truncation
    p4, n, charge, pid = sort_padded(p4, n, None, None, max_particles)
    labels = df[LABEL].to_numpy()
    bad = np.flatnonzero(~np.isin(labels, (0, 1)))
    if bad.size:
        raise DataError(f"{path}: jet {int(bad[0])}: {LABEL} is {labels[bad[0]].item()!r}, not 0 or 1")
    return JetSet(p4=p4, n_particles=n, charge=charge, pid=pid, labels=labels.astype(np.int64),
                  class_names=list(CLASS_NAMES), jet=jet, meta={"source": "top-tagging pandas HDF5",
                                                                "pid_flags_known": False}).validate()
