"""Reading and writing jets: l1tagger's own HDF5 format and ``load_jets`` for every supported format.

``load_jets(path)`` looks at the file (ROOT magic bytes, HDF5 attributes / dataset names / pandas layout) and
dispatches to the matching reader in :data:`READERS`; each reader returns a validated :class:`JetSet` whose
constituents are sorted by pT (descending) and zero padded. To support a new format add a reader module with
``detect(path) -> bool`` and ``read(path, max_particles=None, max_jets=None) -> JetSet`` and register it here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from l1tagger.data.jetset import JET_FIELDS, PID_FLAGS, JetSet
from l1tagger.errors import DataError
from l1tagger.utils.atomic import atomic_path

FORMAT_NAME = "l1tagger-jets"
FORMAT_VERSION = 1

#: reader name -> module path; the order is the detection order
READERS = {
    "l1tagger": "l1tagger.data.readers.l1tagger_h5",
    "jetclass": "l1tagger.data.readers.jetclass",
    "hls4ml_lhc": "l1tagger.data.readers.hls4ml_lhc",
    "toptag": "l1tagger.data.readers.toptag",
}


def _reader(name: str):
    import importlib

    if name not in READERS:
        raise DataError(f"unknown reader {name!r}; known readers: {', '.join(READERS)}")
    return importlib.import_module(READERS[name])


def detect_format(path: str | Path) -> str:
    """Name of the reader that understands ``path``; DataError when none does."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset file not found: {path}")
    for name in READERS:
        if _reader(name).detect(path):
            return name
    raise DataError(
        f"{path}: not a recognised jet file (known formats: l1tagger HDF5, JetClass ROOT, hls4ml LHC jets HDF5, "
        "top-tagging pandas HDF5)"
    )


def load_jets(path: str | Path, format: str | None = None, max_particles: int | None = None,
              max_jets: int | None = None) -> JetSet:
    """Load any supported jet file as a validated JetSet.

    format:         force a reader ("l1tagger", "jetclass", "hls4ml_lhc", "toptag"); None = auto-detect
    max_particles:  pad/truncate constituents to this many (None = the file's own length)
    max_jets:       read at most this many jets from the start of the file
    """
    name = format or detect_format(path)
    js = _reader(name).read(Path(path), max_particles=max_particles, max_jets=max_jets)
    js.meta.setdefault("source_file", str(path))
    js.meta.setdefault("source_format", name)
    return js.validate()


def write_jets(js: JetSet, path: str | Path, compression: str | None = "gzip") -> Path:
    """Write ``js`` to l1tagger HDF5 atomically (a reader never sees a half-written file)."""
    import h5py

    js.validate()
    path = Path(path)
    kw = {"compression": compression, "compression_opts": 4} if compression == "gzip" else {"compression": compression}
    if compression is None:
        kw = {}
    with atomic_path(path, suffix=".h5.tmp") as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["class_names"] = json.dumps(js.class_names)
            f.attrs["pid_flags"] = json.dumps(list(PID_FLAGS))
            f.attrs["meta"] = json.dumps(js.meta, default=_json_default)
            f.create_dataset("p4", data=js.p4, **kw)
            f.create_dataset("n_particles", data=js.n_particles)
            f.create_dataset("charge", data=js.charge, **kw)
            f.create_dataset("pid", data=js.pid, **kw)
            f.create_dataset("labels", data=js.labels)
            grp = f.create_group("jet")
            for key, arr in js.jet.items():
                grp.create_dataset(key, data=arr)
    return path


def read_meta(path: str | Path) -> dict:
    """The ``meta`` dictionary of an l1tagger HDF5 file without loading the arrays."""
    import h5py

    with h5py.File(path, "r") as f:
        return json.loads(f.attrs.get("meta", "{}"))


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, tuple)):
        return str(obj) if isinstance(obj, Path) else list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# ---------------------------------------------------------------- helpers shared by the readers
def pad_sorted(p4_list, charge_list=None, pid_list=None, max_particles: int | None = None):
    """Per-jet variable-length arrays -> pT-sorted, zero-padded (p4, n_particles, charge, pid) arrays."""
    n_jets = len(p4_list)
    counts = np.array([len(p) for p in p4_list], dtype=np.int64)
    P = int(max_particles or (counts.max() if n_jets else 1))
    p4 = np.zeros((n_jets, P, 4), np.float32)
    charge = np.zeros((n_jets, P), np.float32)
    pid = np.zeros((n_jets, P, len(PID_FLAGS)), np.uint8)
    for j in range(n_jets):
        a = np.asarray(p4_list[j], dtype=np.float64).reshape(-1, 4)
        order = np.argsort(-np.hypot(a[:, 0], a[:, 1]), kind="stable")[:P]
        n = len(order)
        p4[j, :n] = a[order]
        if charge_list is not None:
            charge[j, :n] = np.asarray(charge_list[j])[order]
        if pid_list is not None:
            pid[j, :n] = np.asarray(pid_list[j]).reshape(-1, len(PID_FLAGS))[order]
    return p4, np.minimum(counts, P).astype(np.int32), charge, pid


def sort_padded(p4: np.ndarray, n_particles: np.ndarray, charge=None, pid=None, max_particles: int | None = None):
    """Sort already padded (n, P, 4) constituents by pT (padding last) and pad/truncate to max_particles."""
    p4 = np.asarray(p4, dtype=np.float32)
    n, P = p4.shape[:2]
    valid = np.arange(P)[None, :] < np.asarray(n_particles)[:, None]
    key = np.where(valid, -np.hypot(p4[..., 0], p4[..., 1]), np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    take = lambda a: np.take_along_axis(a, order.reshape(order.shape + (1,) * (a.ndim - 2)), axis=1)  # noqa: E731
    p4 = take(p4)
    charge = take(np.asarray(charge, np.float32)) if charge is not None else np.zeros((n, P), np.float32)
    pid = take(np.asarray(pid, np.uint8)) if pid is not None else np.zeros((n, P, len(PID_FLAGS)), np.uint8)
    M = int(max_particles or P)
    if M < P:
        p4, charge, pid = p4[:, :M], charge[:, :M], pid[:, :M]
    elif M > P:
        p4 = np.pad(p4, ((0, 0), (0, M - P), (0, 0)))
        charge = np.pad(charge, ((0, 0), (0, M - P)))
        pid = np.pad(pid, ((0, 0), (0, M - P), (0, 0)))
    return p4, np.minimum(np.asarray(n_particles), M).astype(np.int32), charge, pid


def jet_kinematics(p4: np.ndarray, n_particles: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """pt, eta, phi, mass of the summed constituent 4-vectors (E scheme), float32 arrays."""
    from l1tagger.physics import kinematics as kin

    s = np.asarray(p4, dtype=np.float64).sum(axis=1)
    px, py, pz, e = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
    m2 = kin.mass2(e, px, py, pz)
    return {
        "pt": kin.pt(px, py).astype(np.float32),
        "eta": kin.eta(px, py, pz).astype(np.float32),
        "phi": kin.phi(px, py).astype(np.float32),
        "mass": np.sqrt(np.clip(m2, 0, None)).astype(np.float32),
    }


__all__ = ["FORMAT_NAME", "READERS", "JET_FIELDS", "detect_format", "load_jets", "write_jets", "read_meta",
           "pad_sorted", "sort_padded", "jet_kinematics"]
