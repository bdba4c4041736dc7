"""JetClass ROOT files (tree ``tree``; branches as in ``../shared/REFERENCE.md``), read with uproot.

Particles: ``part_px, part_py, part_pz, part_energy, part_charge, part_is*`` flags. Jets: ``jet_pt, jet_eta,
jet_phi, jet_energy, jet_sdmass, jet_tau1..3``. Labels: one-hot ``label_*`` branches; the class names are the
label branch names without the prefix: JetClass's order (QCD, Hbb, Hcc, Hgg, H4q, Hqql, Zqq, Wqq, Tbqq, Tbl)
when the file has exactly those, else file order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l1tagger.data.jetset import PID_FLAGS, JetSet, integer_array
from l1tagger.errors import DataError

TREE = "tree"
P4_BRANCHES = ("part_px", "part_py", "part_pz", "part_energy")
CHARGE_BRANCH = "part_charge"
FLAG_BRANCHES = tuple(f"part_{f}" for f in PID_FLAGS)
JET_BRANCHES = {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "sdmass": "jet_sdmass",
                "tau1": "jet_tau1", "tau2": "jet_tau2", "tau3": "jet_tau3"}
LABEL_PREFIX = "label_"
#: JetClass's own class order; files whose label branches are exactly these get this order
CANONICAL_LABELS = ("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl")


def detect(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"root"


def read(path: Path, max_particles: int | None = None, max_jets: int | None = None) -> JetSet:
    import awkward as ak
    import uproot

    from l1tagger.data.io import one_hot_labels, real_particles, sort_padded

    with uproot.open(path) as f:
        if TREE not in f:
            raise DataError(f"{path}: JetClass file has no tree {TREE!r} (keys: {', '.join(f.keys())})")
        tree = f[TREE]
        names = set(tree.keys())
        for b in (*P4_BRANCHES, CHARGE_BRANCH, *FLAG_BRANCHES, "jet_energy", *JET_BRANCHES.values()):
            if b not in names:
                raise DataError(f"{path}: JetClass tree is missing branch {b!r}")
        label_branches = [b for b in tree.keys() if b.startswith(LABEL_PREFIX)]
        if not label_branches:
            raise DataError(f"{path}: JetClass tree has no label_* branches")
        if sorted(b[len(LABEL_PREFIX):] for b in label_branches) == sorted(CANONICAL_LABELS):
            label_branches = [LABEL_PREFIX + c for c in CANONICAL_LABELS]
        branches = [*P4_BRANCHES, CHARGE_BRANCH, *FLAG_BRANCHES, "jet_energy", *JET_BRANCHES.values(), *label_branches]
        arr = tree.arrays(branches, entry_stop=max_jets, library="ak")

    counts = ak.to_numpy(ak.num(arr[P4_BRANCHES[0]])).astype(np.int64)
    for b in (*P4_BRANCHES[1:], CHARGE_BRANCH, *FLAG_BRANCHES):
        other = ak.to_numpy(ak.num(arr[b])).astype(np.int64)
        bad = np.flatnonzero(other != counts)
        if bad.size:
            j = int(bad[0])
            raise DataError(f"{path}: jet {j}: branch {b!r} has {other[j]} particles but {P4_BRANCHES[0]!r} has "
                            f"{counts[j]}")
    P = int(counts.max()) if len(counts) else 1

    def padded(branch):
        return ak.to_numpy(ak.fill_none(ak.pad_none(arr[branch], P, clip=True), 0)).astype(np.float64)

    p4 = np.stack([padded(b) for b in P4_BRANCHES], axis=-1)
    real_particles(p4, P4_BRANCHES)  # NaN/inf before sorting: a NaN pT would sort last and could be cut
    charge = padded(CHARGE_BRANCH)
    bad = np.argwhere(~np.isfinite(charge))
    if bad.size:
        raise DataError(f"{path}: jet {int(bad[0][0])}, particle {int(bad[0][1])}: {CHARGE_BRANCH} is not finite")
    pid = np.stack([padded(b) for b in FLAG_BRANCHES], axis=-1)
    p4, n, charge, pid = sort_padded(p4, counts, charge, integer_array(pid, np.uint8, "particle-type flag"),
                                     max_particles)
    labels = one_hot_labels(np.stack([ak.to_numpy(arr[b]) for b in label_branches], axis=1), label_branches)
    jet = {k: ak.to_numpy(arr[b]).astype(np.float32) for k, b in JET_BRANCHES.items()}
    e = ak.to_numpy(arr["jet_energy"]).astype(np.float64)
    pz = jet["pt"].astype(np.float64) * np.sinh(jet["eta"].astype(np.float64))
    jet["mass"] = np.sqrt(np.clip(e**2 - jet["pt"].astype(np.float64) ** 2 - pz**2, 0, None)).astype(np.float32)
    return JetSet(p4=p4, n_particles=n, charge=charge, pid=pid, labels=labels,
                  class_names=[b[len(LABEL_PREFIX):] for b in label_branches], jet=jet,
                  meta={"source": "JetClass ROOT"}).validate()
