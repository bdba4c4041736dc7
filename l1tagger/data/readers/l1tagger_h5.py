"""l1tagger's own HDF5 jet files (written by ``l1tagger.data.io.write_jets``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from l1tagger.data.jetset import PID_FLAGS, JetSet, integer_array
from l1tagger.errors import DataError

REQUIRED = ("p4", "n_particles", "charge", "pid", "labels")


def detect(path: Path) -> bool:
    import h5py

    if not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as f:
        return f.attrs.get("format") == "l1tagger-jets"


def read(path: Path, max_particles: int | None = None, max_jets: int | None = None) -> JetSet:
    import h5py

    from l1tagger.data.io import sort_padded

    with h5py.File(path, "r") as f:
        for name in REQUIRED:
            if name not in f:
                raise DataError(f"{path}: l1tagger jet file is missing dataset {name!r}")
        flags = json.loads(f.attrs.get("pid_flags", json.dumps(list(PID_FLAGS))))
        if list(flags) != list(PID_FLAGS):
            raise DataError(f"{path}: particle-type flags {flags} differ from {list(PID_FLAGS)}")
        if "class_names" not in f.attrs:
            raise DataError(f"{path}: l1tagger jet file is missing the attribute 'class_names'")
        sl = slice(0, max_jets)
        arrays = {name: f[name][sl] for name in REQUIRED}
        jet = {k: f["jet"][k][sl] for k in f["jet"]} if "jet" in f else {}
        class_names = json.loads(f.attrs["class_names"])
        meta = json.loads(f.attrs.get("meta", "{}"))
    p4, charge = arrays["p4"], arrays["charge"]
    n = integer_array(arrays["n_particles"], np.int32, "n_particles")  # before sort_padded could truncate them
    pid = integer_array(arrays["pid"], np.uint8, "particle-type flag")
    labels = integer_array(arrays["labels"], np.int64, "label")
    if max_particles is not None and max_particles != p4.shape[1]:
        p4, n, charge, pid = sort_padded(p4, n, charge, pid, max_particles)
    return JetSet(p4=p4, n_particles=n, charge=charge, pid=pid, labels=labels,
                  class_names=class_names, jet=jet, meta=meta).validate()
