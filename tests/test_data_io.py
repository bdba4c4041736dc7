"""Readers on small files written here in each format, and the l1tagger HDF5 round trip."""

import h5py
import numpy as np
import pytest

from l1tagger.data.io import detect_format, load_jets, write_jets
from l1tagger.data.jetset import PID_FLAGS
from l1tagger.errors import DataError

JETCLASS_LABELS = ["QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl"]


def _random_particles(rng, n):
    pt = rng.exponential(30, n) + 1
    eta = rng.normal(0, 0.3, n)
    phi = rng.normal(0, 0.3, n)
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], axis=1)


def _is_pt_sorted(js):
    pt = np.hypot(js.p4[..., 0], js.p4[..., 1])
    return all((np.diff(pt[j, : js.n_particles[j]]) <= 1e-4).all() for j in range(len(js)))


def test_l1tagger_roundtrip(tmp_path, toy_jets):
    toy_jets.jet["sdmass"] = np.arange(len(toy_jets), dtype=np.float32)
    toy_jets.meta = {"seed": 3, "note": "x"}
    path = write_jets(toy_jets, tmp_path / "a.h5")
    assert detect_format(path) == "l1tagger"
    back = load_jets(path)
    np.testing.assert_array_equal(back.p4, toy_jets.p4)
    np.testing.assert_array_equal(back.pid, toy_jets.pid)
    np.testing.assert_array_equal(back.labels, toy_jets.labels)
    np.testing.assert_array_equal(back.jet["sdmass"], toy_jets.jet["sdmass"])
    assert back.class_names == toy_jets.class_names and back.meta["seed"] == 3
    small = load_jets(path, max_particles=4, max_jets=10)
    assert small.p4.shape == (10, 4, 4) and small.n_particles.max() <= 4
    assert not list(tmp_path.glob(".*tmp"))  # atomic writer leaves no temporaries


def test_l1tagger_missing_dataset(tmp_path, toy_jets):
    path = write_jets(toy_jets, tmp_path / "a.h5")
    with h5py.File(path, "a") as f:
        del f["charge"]
    with pytest.raises(DataError, match="'charge'"):
        load_jets(path)


def _write_jetclass(path, rng, n=12, drop=None):
    import awkward as ak
    import uproot

    counts = rng.integers(2, 9, n)
    parts = [_random_particles(rng, c) for c in counts]
    flags = [np.eye(5)[rng.integers(0, 5, c)] for c in counts]
    labels = rng.integers(0, 10, n)
    branches = {
        "part_px": ak.Array([p[:, 0] for p in parts]), "part_py": ak.Array([p[:, 1] for p in parts]),
        "part_pz": ak.Array([p[:, 2] for p in parts]), "part_energy": ak.Array([p[:, 3] for p in parts]),
        "part_charge": ak.Array([rng.integers(-1, 2, c).astype(np.float64) for c in counts]),
    }
    for k, f in enumerate(PID_FLAGS):
        branches[f"part_{f}"] = ak.Array([fl[:, k] for fl in flags])
    tot = np.array([p.sum(0) for p in parts])
    pt = np.hypot(tot[:, 0], tot[:, 1])
    branches.update({"jet_pt": pt, "jet_eta": np.arcsinh(tot[:, 2] / pt), "jet_phi": np.arctan2(tot[:, 1], tot[:, 0]),
                     "jet_energy": tot[:, 3], "jet_nparticles": counts.astype(np.float64),
                     "jet_sdmass": rng.uniform(0, 200, n), "jet_tau1": rng.uniform(0.2, 0.5, n),
                     "jet_tau2": rng.uniform(0.1, 0.2, n), "jet_tau3": rng.uniform(0.0, 0.1, n),
                     "jet_tau4": rng.uniform(0.0, 0.1, n)})
    for k, name in enumerate(JETCLASS_LABELS):
        branches[f"label_{name}"] = (labels == k).astype(np.float64)
    if drop:
        del branches[drop]
    with uproot.recreate(path) as f:
        f["tree"] = branches
    return parts, labels, tot


def test_jetclass_reader(tmp_path):
    rng = np.random.default_rng(0)
    parts, labels, tot = _write_jetclass(tmp_path / "jc.root", rng)
    assert detect_format(tmp_path / "jc.root") == "jetclass"
    js = load_jets(tmp_path / "jc.root")
    assert js.class_names == JETCLASS_LABELS
    np.testing.assert_array_equal(js.labels, labels)
    np.testing.assert_array_equal(js.n_particles, [len(p) for p in parts])
    np.testing.assert_allclose(js.p4.sum(axis=1), tot, rtol=1e-5)
    assert _is_pt_sorted(js)
    assert (js.pid.sum(-1)[js.mask] == 1).all()
    m = np.sqrt(np.clip(tot[:, 3] ** 2 - (tot[:, :3] ** 2).sum(1), 0, None))
    np.testing.assert_allclose(js.jet["mass"], m, rtol=1e-3, atol=1e-2)
    assert load_jets(tmp_path / "jc.root", max_particles=3).max_particles == 3


def test_jetclass_missing_branch(tmp_path):
    _write_jetclass(tmp_path / "jc.root", np.random.default_rng(1), drop="part_isPhoton")
    with pytest.raises(DataError, match="part_isPhoton"):
        load_jets(tmp_path / "jc.root")


def _write_hls4ml(path, rng, n=10, P=150, drop_label=False):
    pnames = ["j1_px", "j1_py", "j1_pz", "j1_e", "j1_erel", "j1_pt", "j1_ptrel", "j1_eta", "j1_etarel", "j1_etarot",
              "j1_phi", "j1_phirel", "j1_phirot", "j1_deltaR", "j1_costheta", "j1_costhetarel"]
    # shuffle the column order: the reader must resolve columns by name
    perm = rng.permutation(len(pnames))
    pnames = [pnames[i] for i in perm]
    jnames = ["j_ptfrac", "j_pt", "j_eta", "j_mass", "j_tau1_b1", "j_tau2_b1", "j_tau3_b1", "j_mass_mmdt"]
    jnames += [f"j_extra{i}" for i in range(59 - len(jnames) - 5)] + ["j_g", "j_q", "j_w", "j_z", "j_t"]
    if drop_label:
        jnames[jnames.index("j_w")] = "j_x"
    counts = rng.integers(3, 30, n)
    const = np.zeros((n, P, len(pnames)))
    labels = rng.integers(0, 5, n)
    jets = rng.uniform(0, 1, (n, len(jnames)))
    jets[:, -5:] = np.eye(5)[labels]
    for j, c in enumerate(counts):
        p = _random_particles(rng, c)[rng.permutation(c)]  # unsorted
        for k, name in enumerate(("j1_px", "j1_py", "j1_pz", "j1_e")):
            const[j, :c, pnames.index(name)] = p[:, k]
        const[j, :c, pnames.index("j1_eta")] = 99.0
    with h5py.File(path, "w") as f:
        f["jetConstituentList"] = const
        f["particleFeatureNames"] = np.array([s.encode() for s in pnames])
        f["jets"] = jets
        f["jetFeatureNames"] = np.array([s.encode() for s in jnames])
    return counts, labels, jets, jnames


def test_hls4ml_reader_resolves_columns_by_name(tmp_path):
    counts, labels, jets, jnames = _write_hls4ml(tmp_path / "h.h5", np.random.default_rng(2))
    assert detect_format(tmp_path / "h.h5") == "hls4ml_lhc"
    js = load_jets(tmp_path / "h.h5")
    assert js.class_names == ["g", "q", "W", "Z", "t"]
    np.testing.assert_array_equal(js.labels, labels)
    np.testing.assert_array_equal(js.n_particles, counts)
    assert _is_pt_sorted(js)
    np.testing.assert_allclose(js.jet["sdmass"], jets[:, jnames.index("j_mass_mmdt")], rtol=1e-6)
    assert (js.p4[..., 3] >= 0).all() and js.max_particles == 150
    assert load_jets(tmp_path / "h.h5", max_particles=8).max_particles == 8


def test_hls4ml_missing_label_column(tmp_path):
    _write_hls4ml(tmp_path / "h.h5", np.random.default_rng(3), drop_label=True)
    with pytest.raises(DataError, match="j_w"):
        load_jets(tmp_path / "h.h5")


def _write_toptag(path, rng, n=8, drop=None):
    import pandas as pd

    data = {}
    counts = rng.integers(2, 20, n)
    p4 = np.zeros((n, 200, 4))
    for j, c in enumerate(counts):
        p4[j, :c] = _random_particles(rng, c)
    for i in range(200):
        for k, comp in enumerate(("PX", "PY", "PZ", "E")):
            data[f"{comp}_{i}"] = p4[:, i, k]
    labels = rng.integers(0, 2, n)
    data["is_signal_new"] = labels
    data["truthE"] = np.zeros(n)
    df = pd.DataFrame(data)
    if drop:
        df = df.drop(columns=[drop])
    df.to_hdf(path, key="table")
    return counts, labels, p4


def test_toptag_reader(tmp_path):
    counts, labels, p4 = _write_toptag(tmp_path / "t.h5", np.random.default_rng(4))
    assert detect_format(tmp_path / "t.h5") == "toptag"
    js = load_jets(tmp_path / "t.h5", max_particles=32)
    assert js.class_names == ["QCD", "top"]
    np.testing.assert_array_equal(js.labels, labels)
    np.testing.assert_array_equal(js.n_particles, np.minimum(counts, 32))
    assert _is_pt_sorted(js)
    np.testing.assert_allclose(js.jet["pt"], np.hypot(p4.sum(1)[:, 0], p4.sum(1)[:, 1]), rtol=1e-5)
    assert len(load_jets(tmp_path / "t.h5", max_jets=3)) == 3


def test_toptag_missing_column(tmp_path):
    _write_toptag(tmp_path / "t.h5", np.random.default_rng(5), drop="PZ_7")
    with pytest.raises(DataError, match="PZ_7"):
        load_jets(tmp_path / "t.h5")
    _write_toptag(tmp_path / "u.h5", np.random.default_rng(5), drop="is_signal_new")
    with pytest.raises(DataError, match="is_signal_new"):
        load_jets(tmp_path / "u.h5")


def test_unrecognised_and_missing_files(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DataError, match="not a recognised jet file"):
        load_jets(tmp_path / "x.txt")
    with pytest.raises(DataError, match="not found"):
        load_jets(tmp_path / "nope.h5")
    with pytest.raises(DataError, match="unknown reader"):
        load_jets(tmp_path / "x.txt", format="csv")
