"""Reading and writing jets: l1tagger's own HDF5 format and ``load_jets`` for every supported format.

``load_jets(path)`` looks at the file (ROOT magic bytes, HDF5 attributes / dataset names / pandas layout) and
dispatches to the matching reader in :data:`READERS`; each reader returns a validated :class:`JetSet` whose
constituents are sorted by pT (descending) and zero padded. To support a new format add a reader module with
``detect(path) -> bool`` and ``read(path, max_particles=None, max_jets=None) -> JetSet`` and register it here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from l1tagger.data.jetset import JET_FIELDS, PID_FLAGS, JetSet
from l1tagger.errors import DataError, OutputError
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
#: reader name -> the format in words (error messages)
FORMAT_TITLES = {
    "l1tagger": "l1tagger HDF5",
    "jetclass": "JetClass ROOT",
    "hls4ml_lhc": "hls4ml LHC jets HDF5",
    "toptag": "top-tagging pandas HDF5",
}


def _reader(name: str):
    import importlib

    if name not in READERS:
        raise DataError(f"unknown reader {name!r}; known readers: {', '.join(READERS)}")
    return importlib.import_module(READERS[name])


def _read_errors() -> tuple[type[BaseException], ...]:
    """What h5py, PyTables/pandas and uproot raise on a truncated or corrupt file (uproot alone raises OSError,
    ValueError, zlib.error, AssertionError, NotImplementedError or its DeserializationError, depending on where
    the damage is)."""
    import struct
    import zlib

    errors: list[type[BaseException]] = [OSError, EOFError, ValueError, LookupError, RuntimeError, AssertionError,
                                         struct.error, zlib.error]
    uproot = sys.modules.get("uproot")  # only a file that was handed to uproot can raise its errors
    if uproot is not None:
        errors.append(uproot.deserialization.DeserializationError)
    return tuple(errors)


def _describe(exc: BaseException) -> str:
    """An exception as one short line (uproot's messages span several lines)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def detect_format(path: str | Path) -> str:
    """Name of the reader that understands ``path``; DataError when none does or the file cannot be opened."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset file not found: {path}")
    for name in READERS:
        try:
            found = _reader(name).detect(path)
        except _read_errors() as exc:
            raise DataError(f"{path}: cannot open the file to detect its format (truncated or corrupt?): "
                            f"{_describe(exc)}") from exc
        if found:
            return name
    raise DataError(f"{path}: not a recognised jet file (known formats: {', '.join(FORMAT_TITLES.values())})")


def load_jets(path: str | Path, format: str | None = None, max_particles: int | None = None,
              max_jets: int | None = None) -> JetSet:
    """Load any supported jet file as a validated JetSet.

    format:         force a reader ("l1tagger", "jetclass", "hls4ml_lhc", "toptag"); None = auto-detect
    max_particles:  pad/truncate constituents to this many (None = the file's own length)
    max_jets:       read at most this many jets from the start of the file (a class-balanced random subset is
                    ``JetSet.sample``; ``l1tagger.data.dataset.load_dataset`` does that)

    Every failure is a DataError whose message starts with the file path: a reader's own checks (jet indices
    are positions in the file), and a truncated or corrupt file (the library's error is chained).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset file not found: {path}")
    name = format or detect_format(path)
    reader = _reader(name)
    try:
        js = reader.read(path, max_particles=max_particles, max_jets=max_jets)
        js.meta.setdefault("source_file", str(path))
        js.meta.setdefault("source_format", name)
        return js.validate()
    except DataError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise DataError(f"{path}: {exc}") from exc
    except _read_errors() as exc:
        raise DataError(f"{path}: cannot read the file as {FORMAT_TITLES[name]} (truncated or corrupt?): "
                        f"{_describe(exc)}") from exc


def write_jets(js: JetSet, path: str | Path, compression: str | None = "gzip") -> Path:
    """Write ``js`` to l1tagger HDF5 atomically (a reader never sees a half-written file)."""
    import h5py

    js.validate()
    path = Path(path)
    kw = {"compression": compression, "compression_opts": 4} if compression == "gzip" else {"compression": compression}
    if compression is None:
        kw = {}
    meta = json.dumps(js.meta, default=_json_default)
    try:
        with atomic_path(path, suffix=".h5.tmp") as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = FORMAT_NAME
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["class_names"] = json.dumps(js.class_names)
                f.attrs["pid_flags"] = json.dumps(list(PID_FLAGS))
                f.attrs["meta"] = meta
                f.create_dataset("p4", data=js.p4, **kw)
                f.create_dataset("n_particles", data=js.n_particles)
                f.create_dataset("charge", data=js.charge, **kw)
                f.create_dataset("pid", data=js.pid, **kw)
                f.create_dataset("labels", data=js.labels)
                grp = f.create_group("jet")
                for key, arr in js.jet.items():
                    grp.create_dataset(key, data=arr)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the jet file: {output_problem(exc)}") from exc
    return path


def output_problem(exc: OSError) -> str:
    """Why an output path cannot be written, in one line (the OS reason and the path it concerns)."""
    reason = exc.strerror or _describe(exc)
    return f"{reason} ({exc.filename})" if exc.filename else reason


def read_meta(path: str | Path) -> dict:
    """The ``meta`` dictionary of an l1tagger HDF5 file without loading the arrays; DataError when unreadable."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return json.loads(f.attrs.get("meta", "{}"))
    except _read_errors() as exc:
        raise DataError(f"{path}: cannot read the jet file's metadata ({_describe(exc)})") from exc


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


def real_particles(p4: np.ndarray, columns: tuple[str, ...] = ("px", "py", "pz", "E")) -> np.ndarray:
    """(n, P) mask of the real particles of zero-padded (n, P, 4) constituents: those with E > 0.

    A padded slot must be all zeros: a NaN/inf component, or E <= 0 with a non-zero momentum, is a DataError
    naming the jet and particle (such a particle would otherwise vanish as if it were padding).
    """
    p4 = np.asarray(p4)
    bad = ~np.isfinite(p4)
    if bad.any():
        j, i, k = (int(x) for x in np.argwhere(bad)[0])
        raise DataError(f"jet {j}, particle {i}: {columns[k]} is {p4[j, i, k].item()} (not finite)")
    real = p4[..., 3] > 0
    ghost = ~real & (p4[..., :3] != 0).any(axis=-1)
    if ghost.any():
        j, i = (int(x) for x in np.argwhere(ghost)[0])
        raise DataError(f"jet {j}, particle {i}: energy {p4[j, i, 3].item()} <= 0 with a non-zero momentum "
                        "(padded slots must be all zeros)")
    return real


def compact(p4: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Move the real particles to the front of each jet (keeping their order) and zero the rest."""
    order = np.argsort(~real, axis=1, kind="stable")
    front = np.take_along_axis(real, order, axis=1)
    return np.where(front[..., None], np.take_along_axis(p4, order[..., None], axis=1), 0.0)


def one_hot_labels(onehot: np.ndarray, columns: list[str] | tuple[str, ...]) -> np.ndarray:
    """Class indices from (n, C) one-hot label columns; DataError naming the jet unless each row is one 1 and
    zeros (a fractional or multiple label must not be rounded to a class)."""
    onehot = np.asarray(onehot, dtype=np.float64)
    bad = ~np.isin(onehot, (0.0, 1.0))
    if bad.any():
        j, k = (int(x) for x in np.argwhere(bad)[0])
        raise DataError(f"jet {j}: label {columns[k]} is {onehot[j, k].item()!r}, not 0 or 1")
    bad = np.flatnonzero(onehot.sum(axis=1) != 1)
    if bad.size:
        raise DataError(f"jet {int(bad[0])} does not have exactly one of the labels {', '.join(columns)} set")
    return onehot.argmax(axis=1)


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


__all__ = ["FORMAT_NAME", "FORMAT_TITLES", "READERS", "JET_FIELDS", "detect_format", "load_jets", "write_jets",
           "read_meta", "output_problem", "pad_sorted", "real_particles", "compact", "one_hot_labels", "sort_padded",
           "jet_kinematics"]
