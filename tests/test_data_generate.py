"""Real generation with Pythia 8 + FastJet: determinism for any worker count, resumption, metadata, physics.

The default run generates a few jets per class (about 20 s on one core); the physics checks with enough jets to
see the mass peaks properly are @pytest.mark.slow.
"""

import json
from dataclasses import replace

import h5py
import numpy as np
import pytest

from l1tagger.data.generate import GeneratorConfig, generate, generate_chunk
from l1tagger.data.io import load_jets
from l1tagger.errors import DataError
from l1tagger.physics.substructure import tau_ratio

SMALL = GeneratorConfig(chunk_size=10)


def _same(a, b):
    np.testing.assert_array_equal(a.p4, b.p4)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.pid, b.pid)
    np.testing.assert_array_equal(a.charge, b.charge)
    for k in a.jet:
        np.testing.assert_array_equal(a.jet[k], b.jet[k])


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("gen")
    path = generate("hls4ml5", 20, d / "two.h5", seed=7, max_particles=64, workers=2, cfg=SMALL, progress=False,
                    keep_parts=True)
    return d, path


def test_generated_file_content_and_metadata(small_run):
    _, path = small_run
    js = load_jets(path)
    assert js.class_counts() == {"g": 20, "q": 20, "W": 20, "Z": 20, "t": 20}
    assert js.max_particles == 64
    assert set(js.jet) >= {"pt", "eta", "phi", "mass", "sdmass", "tau1", "tau2", "tau3"}
    assert ((js.jet["pt"] >= 900) & (js.jet["pt"] < 1100)).all() and (np.abs(js.jet["eta"]) < 2).all()
    # constituents: pT sorted, every real particle has exactly one type flag, charges match the flags
    pt = np.hypot(js.p4[..., 0], js.p4[..., 1])
    m = js.mask
    assert all((np.diff(pt[j, m[j]]) <= 1e-3).all() for j in range(len(js)))
    flags = js.pid[m]
    assert (flags.sum(-1) == 1).all()
    charged = flags[:, 0] | flags[:, 3] | flags[:, 4]
    assert (np.abs(js.charge[m])[charged == 1] == 1).all() and (js.charge[m][flags[:, 1] == 1] == 0).all()
    assert (js.charge[m][flags[:, 2] == 1] == 0).all()
    meta = js.meta
    assert meta["seed"] == 7 and meta["generator"]["mpi"] is False
    assert meta["versions"]["pythia8mc"].startswith("8.3") and "fastjet" in meta["versions"]
    assert any("24:onIfAny" in s for s in meta["pythia_settings"]["W"])
    with h5py.File(path) as f:
        assert json.loads(f.attrs["class_names"]) == ["g", "q", "W", "Z", "t"]


def test_physics_sanity_small(small_run):
    js = load_jets(small_run[1])
    by = {n: js.labels == k for k, n in enumerate(js.class_names)}
    sd = js.jet["sdmass"]
    t21 = tau_ratio(js.jet["tau2"], js.jet["tau1"])
    assert 60 < np.median(sd[by["W"]]) < 100
    assert 140 < np.median(sd[by["t"]]) < 200
    assert t21[by["W"]].mean() < t21[by["q"]].mean()


def test_same_seed_same_jets_for_any_worker_count_and_resume(small_run, tmp_path):
    d, path = small_run
    ref = load_jets(path)
    one = load_jets(generate("hls4ml5", 20, tmp_path / "one.h5", seed=7, max_particles=64, workers=1, cfg=SMALL,
                             progress=False))
    _same(ref, one)
    # interrupted run: the output and two chunks are missing; the rerun regenerates only those
    parts = sorted((d / "two.h5.parts").glob("*.h5"))
    assert len(parts) == 10
    kept_mtime = parts[0].stat().st_mtime_ns
    for p in parts[3:5]:
        p.unlink()
    path.unlink()
    again = load_jets(generate("hls4ml5", 20, path, seed=7, max_particles=64, workers=1, cfg=SMALL, progress=False,
                               keep_parts=True))
    _same(ref, again)
    assert parts[0].stat().st_mtime_ns == kept_mtime  # reused, not regenerated


def test_different_seed_different_jets_and_settings_mismatch(small_run, tmp_path):
    a, _ = generate_chunk("hls4ml5", 2, 3, seed=11, cfg=SMALL)
    b, _ = generate_chunk("hls4ml5", 2, 3, seed=12, cfg=SMALL)
    assert not np.array_equal(a.jet["pt"], b.jet["pt"])
    d, path = small_run
    before = path.stat().st_mtime_ns
    generate("hls4ml5", 20, path, seed=7, max_particles=64, workers=1, cfg=SMALL, progress=False)
    assert path.stat().st_mtime_ns == before  # same settings: the finished file is reused
    with pytest.raises(DataError, match="different settings.*seed"):
        generate("hls4ml5", 20, path, seed=8, max_particles=64, workers=1, cfg=SMALL, progress=False)


def test_bad_arguments(tmp_path):
    with pytest.raises(DataError, match="unknown class set 'hls4ml6'"):
        generate("hls4ml6", 10, tmp_path / "x.h5")
    with pytest.raises(DataError, match="n_per_class"):
        generate("hls4ml5", 0, tmp_path / "x.h5")
    with pytest.raises(DataError, match="rejected the setting"):
        generate_chunk("hls4ml5", 0, 1, 1, replace(SMALL, extra_settings=("NoSuch:thing = on",)))


def test_truth_eta_phi_come_from_the_physics_formulas():
    """truth_objects / jet_matches use l1tagger.physics.kinematics (the formulas of the model features), which
    agree with the textbook arcsinh(pz/pt) and atan2(py, px); pT = 0 gives eta = 0; Delta-phi wraps at +-pi."""
    from l1tagger.data.classes import JetClassSpec, TruthRule
    from l1tagger.data.generate import jet_matches, truth_objects
    from l1tagger.physics import kinematics as kin

    rng = np.random.default_rng(1)
    n = 200
    pt, eta, phi = rng.uniform(1, 2000, n), rng.uniform(-4, 4, n), rng.uniform(-np.pi, np.pi, n)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    px[0] = py[0] = 0.0  # along the beam
    zeros = np.zeros(n, np.int64)
    ev = {"id": np.full(n, 21), "status": np.full(n, -23), "d1": zeros, "d2": zeros, "px": px, "py": py, "pz": pz}
    spec = JetClassSpec("g", (), 500.0, -1.0, TruthRule("parton", (21,)))
    got = np.concatenate(truth_objects(spec, ev))
    np.testing.assert_array_equal(got[:, 0], kin.eta(px, py, pz))
    np.testing.assert_array_equal(got[:, 1], kin.phi(px, py))
    textbook = np.arcsinh(np.divide(pz, np.hypot(px, py), out=np.zeros_like(pz), where=np.hypot(px, py) > 0))
    np.testing.assert_allclose(got[:, 0], textbook, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[:, 1], np.arctan2(py, px), rtol=0, atol=1e-15)
    assert got[0, 0] == 0.0
    near_pi = [np.array([[0.2, 3.1]])]
    assert jet_matches(spec, near_pi, 0.2, -3.1, 0.1) and not jet_matches(spec, near_pi, 0.2, -3.0, 0.1)


@pytest.mark.slow
def test_physics_hls4ml5(tmp_path):
    """W/Z/top soft-drop mass peaks at 80/91/173 GeV, QCD falls; tau21 lower for W than for QCD."""
    js = load_jets(generate("hls4ml5", 300, tmp_path / "p.h5", seed=3, workers=2, progress=False))
    sd, t21 = js.jet["sdmass"], tau_ratio(js.jet["tau2"], js.jet["tau1"])
    edges = np.arange(0, 302, 4.0)

    def peak(name):
        h, _ = np.histogram(sd[js.labels == js.class_names.index(name)], edges)
        return edges[h.argmax()] + 2.0

    assert 72 <= peak("W") <= 88
    assert 84 <= peak("Z") <= 98
    assert 160 <= peak("t") <= 185
    for qcd in ("g", "q"):
        m = sd[js.labels == js.class_names.index(qcd)]
        edges_q = np.array([0.0, 50.0, 100.0, 200.0, 400.0])  # widening bins: robust with 300 jets
        density = np.histogram(m, edges_q)[0] / np.diff(edges_q)
        assert (np.diff(density) < 0).all(), density  # falling mass spectrum (jets per GeV)
        assert t21[js.labels == js.class_names.index("W")].mean() < t21[js.labels == js.class_names.index(qcd)].mean() - 0.1
    w_window = ((sd > 65) & (sd < 95))
    assert w_window[js.labels == 2].mean() > 3 * w_window[js.labels == 1].mean()


@pytest.mark.slow
def test_jetclass10_all_classes_generate(tmp_path):
    js = load_jets(generate("jetclass10", 30, tmp_path / "jc.h5", seed=5, workers=2, progress=False))
    assert set(js.class_counts().values()) == {30}
    assert ((js.jet["pt"] >= 500) & (js.jet["pt"] < 1000)).all()
    sd = js.jet["sdmass"]
    med = {n: float(np.median(sd[js.labels == k])) for k, n in enumerate(js.class_names)}
    assert 100 < med["Hbb"] < 140 and 150 < med["Tbqq"] < 190 and med["QCD"] < 80
    # t -> b l nu jets contain a muon or electron
    lep = js.pid[..., 3] | js.pid[..., 4]
    assert lep[js.labels == js.class_names.index("Tbl")].any(axis=1).mean() > 0.9
