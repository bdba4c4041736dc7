"""Issue 12 (reliability), data side: readers that must not lose or round bad values, unreadable files and
unwritable outputs as named errors, class-balanced subsets for every jet-count option, and physics inputs that
stay correct for ultra-soft particles (generator threshold, rapidity clamp, soft-drop mass >= 0)."""

import json
import math

import h5py
import numpy as np
import pytest
import torch

from l1tagger.data.io import load_jets, write_jets
from l1tagger.data.jetset import PID_FLAGS, JetSet
from l1tagger.errors import DataError, OutputError
from l1tagger.data.dataset import load_dataset

HLS4ML_PARTICLE = ["j1_px", "j1_py", "j1_pz", "j1_e"]
HLS4ML_LABELS = ["j_g", "j_q", "j_w", "j_z", "j_t"]
JETCLASS_LABELS = ["QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl"]


def _particles(rng, n):
    pt = rng.exponential(30, n) + 1
    eta, phi = rng.normal(0, 0.3, n), rng.normal(0, 0.3, n)
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], axis=1)


def _hls4ml(path, n=8, P=10, edit=None):
    """hls4ml LHC jets file: px, py, pz, e per particle (zero padded), one-hot label columns per jet."""
    rng = np.random.default_rng(0)
    const = np.zeros((n, P, 4))
    for j in range(n):
        const[j, :5] = _particles(rng, 5)
    jets = np.eye(5)[np.arange(n) % 5]
    if edit:
        edit(const, jets)
    with h5py.File(path, "w") as f:
        f["jetConstituentList"] = const
        f["particleFeatureNames"] = np.array([s.encode() for s in HLS4ML_PARTICLE])
        f["jets"] = jets
        f["jetFeatureNames"] = np.array([s.encode() for s in HLS4ML_LABELS])
    return path


def _toptag(path, n=6, P=4, edit=None):
    import pandas as pd

    rng = np.random.default_rng(1)
    p4 = np.zeros((n, P, 4))
    for j in range(n):
        p4[j, :3] = _particles(rng, 3)
    labels = (np.arange(n) % 2).astype(np.float64)
    if edit:
        edit(p4, labels)
    data = {f"{c}_{i}": p4[:, i, k] for i in range(P) for k, c in enumerate(("PX", "PY", "PZ", "E"))}
    data["is_signal_new"] = labels
    pd.DataFrame(data).to_hdf(path, key="table")
    return path


def _jetclass(path, n=6, edit=None):
    """JetClass ROOT file with jagged particle branches; ``edit(particle_lists, labels)`` changes them first."""
    import awkward as ak
    import uproot

    rng = np.random.default_rng(2)
    counts = [3 + j % 3 for j in range(n)]
    parts = {b: [] for b in ("part_px", "part_py", "part_pz", "part_energy", "part_charge",
                             *(f"part_{f}" for f in PID_FLAGS))}
    for c in counts:
        p = _particles(rng, c)
        for k, b in enumerate(("part_px", "part_py", "part_pz", "part_energy")):
            parts[b].append(p[:, k])
        parts["part_charge"].append(np.zeros(c))
        for k, f in enumerate(PID_FLAGS):
            parts[f"part_{f}"].append(np.full(c, float(k == 0)))
    labels = np.eye(len(JETCLASS_LABELS))[np.arange(n) % len(JETCLASS_LABELS)]
    if edit:
        edit(parts, labels)
    branches = {b: ak.Array(v) for b, v in parts.items()}
    ones = np.ones(n)
    branches.update({"jet_pt": 100 * ones, "jet_eta": 0 * ones, "jet_phi": 0 * ones, "jet_energy": 120 * ones,
                     "jet_sdmass": 20 * ones, "jet_tau1": 0.3 * ones, "jet_tau2": 0.2 * ones, "jet_tau3": 0.1 * ones})
    for k, name in enumerate(JETCLASS_LABELS):
        branches[f"label_{name}"] = labels[:, k]
    with uproot.recreate(path) as f:
        f["tree"] = branches
    return path


def _class_sorted(n_per_class=30, n_classes=3):
    """Toy jets stored class by class, as ``l1tagger generate`` stores them."""
    from l1tagger.data.synthetic import toy_jets

    js = toy_jets(n_jets=n_per_class * n_classes * 3, max_particles=16, n_classes=n_classes, seed=4)
    order = np.concatenate([np.flatnonzero(js.labels == c)[:n_per_class] for c in range(n_classes)])
    return js.subset(order)


# ------------------------------------------------------------------------------ 4. readers lose nothing silently
def test_hls4ml_nan_energy_is_an_error_not_padding(tmp_path):
    def edit(const, jets):
        const[5, 2, 3] = np.nan  # a real particle's energy

    path = _hls4ml(tmp_path / "h.h5", edit=edit)
    with pytest.raises(DataError, match=rf"^{tmp_path / 'h.h5'}: jet 5, particle 2: j1_e is nan"):
        load_jets(path)
    # the jet index is the position in the file, whatever subset a command asks for afterwards
    with pytest.raises(DataError, match="jet 5, particle 2"):
        load_dataset(str(path), max_jets=2)


def test_hls4ml_padding_with_momentum_but_no_energy(tmp_path):
    def edit(const, jets):
        const[1, 7, 0] = 3.0  # px of an E = 0 slot

    with pytest.raises(DataError, match=r"h\.h5: jet 1, particle 7: energy 0\.0 <= 0 with a non-zero momentum"):
        load_jets(_hls4ml(tmp_path / "h.h5", edit=edit))


def test_hls4ml_fractional_label(tmp_path):
    def edit(const, jets):
        jets[3] = [0.5, 0.5, 0, 0, 0]  # sums to 1: the old check let it through as class g

    with pytest.raises(DataError, match=r"h\.h5: jet 3: label j_g is 0\.5, not 0 or 1"):
        load_jets(_hls4ml(tmp_path / "h.h5", edit=edit))


def test_toptag_nan_energy_and_fractional_label(tmp_path):
    def nan(p4, labels):
        p4[2, 1, 3] = np.nan

    with pytest.raises(DataError, match=r"t\.h5: jet 2, particle 1: E is nan"):
        load_jets(_toptag(tmp_path / "t.h5", edit=nan))

    def frac(p4, labels):
        labels[4] = 0.5

    with pytest.raises(DataError, match=r"u\.h5: jet 4: is_signal_new is 0\.5, not 0 or 1"):
        load_jets(_toptag(tmp_path / "u.h5", edit=frac))


def test_jetclass_branches_of_unequal_length(tmp_path):
    def edit(parts, labels):
        parts["part_charge"][4] = parts["part_charge"][4][:-1]  # one particle short: was zero-filled

    with pytest.raises(DataError, match=r"jc\.root: jet 4: branch 'part_charge' has 3 particles but 'part_px' has 4"):
        load_jets(_jetclass(tmp_path / "jc.root", edit=edit))


def test_jetclass_nan_particle_is_not_truncated_away(tmp_path):
    def edit(parts, labels):
        parts["part_px"][3][0] = np.nan  # its pT sorts last, so max_particles=2 used to cut it off unseen

    with pytest.raises(DataError, match=r"jc\.root: jet 3, particle 0: part_px is nan"):
        load_jets(_jetclass(tmp_path / "jc.root", edit=edit), max_particles=2)


def test_jetclass_fractional_label_and_flag(tmp_path):
    def label(parts, labels):
        labels[2, :2] = 0.5

    with pytest.raises(DataError, match=r"a\.root: jet 2: label label_QCD is 0\.5, not 0 or 1"):
        load_jets(_jetclass(tmp_path / "a.root", edit=label))

    def flag(parts, labels):
        parts["part_isChargedHadron"][1][1] = 0.5

    with pytest.raises(DataError, match=r"b\.root: particle-type flag of jet 1, particle 1 is 0\.5, not a whole"):
        load_jets(_jetclass(tmp_path / "b.root", edit=flag))


def test_l1tagger_file_fractional_labels_and_counts(tmp_path, toy_jets):
    js = toy_jets.subset(np.arange(10))
    for name, value, expect in (("labels", 1.5, "label of jet 6 is 1.5, not a whole number"),
                                ("n_particles", 3.5, "n_particles of jet 6 is 3.5, not a whole number")):
        path = write_jets(js, tmp_path / f"{name}.h5")
        with h5py.File(path, "a") as f:
            data = f[name][()].astype(np.float64)
            data[6] = value
            del f[name]
            f[name] = data
        with pytest.raises(DataError, match=rf"{name}\.h5: {expect}"):
            load_jets(path)
        with pytest.raises(DataError, match=rf"{name}\.h5: {expect}"):
            load_jets(path, max_particles=4)  # re-padding must not truncate the count first


def test_jetset_rejects_fractional_labels():
    with pytest.raises(DataError, match="label of jet 1 is 0.5"):
        JetSet(p4=np.ones((2, 1, 4)), n_particles=[1, 1], charge=np.zeros((2, 1)), pid=np.zeros((2, 1, 5)),
               labels=[0, 0.5], class_names=["a", "b"])


# ------------------------------------------------------------------------------ 8. unreadable files, unwritable outputs
def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("kind", ["l1tagger", "hls4ml", "toptag", "jetclass"])
def test_truncated_files(tmp_path, kind, toy_jets):
    path = {"l1tagger": lambda: write_jets(toy_jets, tmp_path / "x.h5"), "hls4ml": lambda: _hls4ml(tmp_path / "x.h5"),
            "toptag": lambda: _toptag(tmp_path / "x.h5"), "jetclass": lambda: _jetclass(tmp_path / "x.root")}[kind]()
    _truncate(path)
    with pytest.raises(DataError, match=rf"^{path}: .*truncated or corrupt") as info:
        load_dataset(str(path))
    assert "\n" not in str(info.value)
    assert isinstance(info.value.__cause__, Exception)  # the library's error is chained, not lost


def test_root_magic_that_is_not_root_and_not_hdf5(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        path = tmp_path / f"fake{i}.root"
        path.write_bytes(b"root" + rng.bytes(int(rng.integers(0, 3000))))
        with pytest.raises(DataError, match=rf"^{path}: cannot read the file as JetClass ROOT"):
            load_jets(path)
    path = tmp_path / "noise.h5"
    path.write_bytes(rng.bytes(4096))
    with pytest.raises(DataError, match=rf"^{path}: not a recognised jet file"):
        load_jets(path)


def test_hdf5_missing_required_parts(tmp_path, toy_jets):
    path = write_jets(toy_jets, tmp_path / "a.h5")
    with h5py.File(path, "a") as f:
        del f.attrs["class_names"]
    with pytest.raises(DataError, match=r"a\.h5: l1tagger jet file is missing the attribute 'class_names'"):
        load_jets(path)
    path = _hls4ml(tmp_path / "b.h5")
    with h5py.File(path, "a") as f:
        del f["jets"]
    with pytest.raises(DataError, match=r"b\.h5: hls4ml LHC jet file is missing dataset 'jets'"):
        load_jets(path)


def test_unwritable_outputs(tmp_path, toy_jets):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"under/x\.h5: cannot write the jet file: Not a directory"):
        write_jets(toy_jets, blocker / "under" / "x.h5")
    with pytest.raises(OutputError, match=r"^/proc/x\.h5: cannot write the jet file"):
        write_jets(toy_jets, "/proc/x.h5")
    from l1tagger.data.generate import generate

    # fails before any event is generated
    with pytest.raises(OutputError, match=r"cannot create the chunk directory"):
        generate("hls4ml5", 1, blocker / "jets.h5", progress=False)


# ------------------------------------------------------------------------------ 5. class-balanced subsets
def test_sample_keeps_every_class_in_proportion():
    js = _class_sorted()
    assert (js.labels[:30] == 0).all()  # the first rows are one class
    sub = js.sample(30, seed=1)
    assert sub.class_counts() == {"toy0": 10, "toy1": 10, "toy2": 10}
    np.testing.assert_array_equal(sub.p4, js.sample(30, seed=1).p4)  # the seed decides
    assert not np.array_equal(sub.p4, js.sample(30, seed=2).p4)
    assert len(js.sample(1000, seed=0)) == len(js)
    assert js.sample(3, seed=0).class_counts() == {"toy0": 1, "toy1": 1, "toy2": 1}
    skewed = js.subset(np.r_[np.arange(30), 30, 60])  # 30, 1, 1 jets: the rare classes are kept
    assert skewed.sample(5, seed=0).class_counts() == {"toy0": 3, "toy1": 1, "toy2": 1}
    with pytest.raises(DataError, match="positive"):
        js.sample(0, seed=0)


def test_load_dataset_subset_is_class_balanced(tmp_path):
    path = write_jets(_class_sorted(), tmp_path / "sorted.h5")
    sub = load_dataset(str(path), max_jets=12, seed=3)
    assert sub.class_counts() == {"toy0": 4, "toy1": 4, "toy2": 4}
    with pytest.raises(DataError, match=r"\(--max-jets / --n-jets\) must be positive"):
        load_dataset(str(path), max_jets=0)


def test_jet_count_options_of_the_commands_sample_every_class(tmp_path):
    from l1tagger.cli import main

    data = write_jets(_class_sorted(40), tmp_path / "sorted.h5")
    run = tmp_path / "run"
    assert main(["train", str(data), "--max-jets", "60", "--out", str(run), "--epochs", "1", "--n-particles", "8",
                 "--d-model", "8", "--n-heads", "2", "--n-blocks", "1", "--ffn-dim", "8", "--embed-dim", "8",
                 "--pair-hidden", "4", "--batch-size", "32", "--no-progress"]) == 0
    val = json.loads((run / "metrics.json").read_text())  # validation: 20 % of the 60 jets, every class in it
    assert val["n_jets"] == 12 and all(v is not None for v in val["auc_per_class"].values())
    assert main(["evaluate", str(run / "best.pt"), str(data), "--max-jets", "30", "--out", str(tmp_path / "ev")]) == 0
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert ev["n_jets"] == 30 and ev["auc_macro"] is not None
    out = tmp_path / "interp"
    assert main(["interpret", str(run / "best.pt"), str(data), "--out", str(out), "--n-jets", "15",
                 "--map-jets", "0"]) == 0
    assert json.loads((out / "summary.json").read_text())["class_counts"] == {"toy0": 5, "toy1": 5, "toy2": 5}
    assert main(["inspect", str(data), "--max-jets", "9", "--out", str(tmp_path / "i.png")]) == 0
    assert json.loads((tmp_path / "i.json").read_text())["class_counts"] == {"toy0": 3, "toy1": 3, "toy2": 3}


# ------------------------------------------------------------------------------ 12. physics inputs
def test_visible_particles_threshold():
    from l1tagger.data.generate import MIN_PARTICLE_ENERGY, visible_particles

    assert MIN_PARTICLE_ENERGY == 1e-3
    status = np.array([1, 1, 1, 1, -62, 1, 1])
    ids = np.array([22, 22, 211, 12, 211, 22, 11])
    energy = np.array([2e-13, 9.99e-4, 0.14, 50.0, 80.0, 1e-3, 5e-4])
    np.testing.assert_array_equal(visible_particles(status, ids, energy), [0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(visible_particles(status, ids, energy, min_energy=0.0), [1, 1, 1, 0, 0, 1, 1])


def test_generated_jets_have_no_ultra_soft_particles():
    from l1tagger.data.generate import GeneratorConfig, generate_chunk

    # this W jet (seed 9) contains a 1.4e-13 GeV photon when nothing is cut
    raw, _ = generate_chunk("hls4ml5", 2, 1, 9, GeneratorConfig(min_particle_energy=0.0))
    assert raw.p4[..., 3][raw.mask].min() < 1e-9
    js, _ = generate_chunk("hls4ml5", 2, 1, 9)
    assert js.p4[..., 3][js.mask].min() >= 1e-3
    assert js.n_particles[0] == raw.n_particles[0] - 1  # only the photon went
    assert js.jet["pt"][0] == pytest.approx(raw.jet["pt"][0], rel=1e-6)


def test_soft_drop_mass_of_a_single_particle_jet_is_not_negative():
    from l1tagger.physics.substructure import soft_drop_mass, substructure

    p4 = np.zeros((2, 2, 4))
    p4[0, 0] = [100.0, 0.0, 0.0, 99.99]  # m^2 < 0, as float32 rounding of a massless particle gives
    p4[1, :2] = [[100.0, 0.0, 0.0, 100.0], [5.0, 0.0, 1.5, 6.0]]  # groomed to the hard particle
    assert soft_drop_mass(p4, np.array([1, 2]))[0] < 0  # FastJet's signed convention
    sd = substructure(p4, np.array([1, 2]))["sdmass"]
    np.testing.assert_array_equal(sd, [0.0, 0.0])


def _weaver_lndelta(p4):
    """ln Delta as weaver-core's pairwise_lv_fts computes it (float64)."""
    px, py, pz, e = (p4[:, k] for k in range(4))
    rap = 0.5 * np.log(1 + (2 * pz) / np.clip(e - pz, 1e-20, None))
    phi = np.arctan2(py, px)
    dphi = np.remainder(phi[:, None] - phi[None, :] + np.pi, 2 * np.pi) - np.pi
    delta = np.sqrt((rap[:, None] - rap[None, :]) ** 2 + dphi**2)
    return np.log(np.clip(delta, 1e-8, None))


def test_rapidity_of_ultra_soft_and_lightlike_particles():
    from l1tagger.features import pairwise_features
    from l1tagger.physics.kinematics import rapidity

    # a 2e-13 GeV photon at y = 0.5 ln 39: the old 1e-8 clamp of E +- pz gave y = 0
    assert rapidity(np.array([2e-13]), np.array([1.9e-13]))[0] == pytest.approx(0.5 * math.log(39), rel=1e-9)
    pt = 1e-13
    soft = [pt * math.cos(0.3), pt * math.sin(0.3), pt * math.sinh(1.2), pt * math.cosh(1.2)]
    p4 = np.array([[100.0, 0.0, 20.0, math.hypot(100, 20)], soft, [0.0, 0.0, 5.0, 5.0], [0.0, 0.0, -5.0, 4.9999999],
                   [1e-3, 0.0, 7.0, 7.0]])
    mask = np.ones((1, len(p4)), bool)
    for xp_p4, xp_mask in ((p4[None], mask), (torch.tensor(p4[None], dtype=torch.float32), torch.tensor(mask))):
        f = pairwise_features(xp_p4, xp_mask)
        f = f.numpy() if isinstance(f, torch.Tensor) else f
        assert np.isfinite(f).all()  # E = |pz| and E < |pz| stay finite
    lnd = pairwise_features(p4[None], mask)[0, ..., 2]
    np.testing.assert_allclose(lnd[:2, :2], _weaver_lndelta(p4[:2]), rtol=1e-9)
    assert lnd[0, 1] == pytest.approx(math.log(math.hypot(1.2 - math.asinh(0.2), 0.3)), rel=1e-9)
