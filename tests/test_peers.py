"""Peer baselines (optional extra ``.[peers]``: hgq2 + keras): a tiny HGQ2 tagger really trained on toy jets, converted
with da4ml, costed with l1tagger's pipelining, and checked bit for bit; a planted error must be caught.

Run with an environment that has the extra, e.g. ``/work/peers-venv/bin/python -m pytest tests/test_peers.py``; the
main CI has no hgq2 and skips this file.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

import l1tagger.peers  # noqa: E402,F401 - sets KERAS_BACKEND=torch before hgq / keras are imported

pytest.importorskip("hgq")
pytest.importorskip("keras")

from l1tagger.data.dataset import split_indices  # noqa: E402
from l1tagger.errors import ConfigError, DataError  # noqa: E402
from l1tagger.models.config import ModelConfig  # noqa: E402
from l1tagger.peers import hgq2  # noqa: E402

TINY = dict(embed_dim=8, n_heads=2, key_dim=4, linformer_k=2, ffn_dim=8, hidden_dim=8, epochs=1, batch_size=64)


@pytest.fixture(scope="module")
def jets():
    from l1tagger.data.synthetic import toy_jets

    return toy_jets(n_jets=300, max_particles=24, n_classes=3, seed=0)


@pytest.fixture(scope="module")
def peer_jets(jets):
    tr, va, te = split_indices(len(jets), (0.6, 0.2, 0.2), seed=1)
    return hgq2.split_jets(jets, {"train": tr, "val": va, "test": te}, ModelConfig(n_particles=8, features="l1"))


@pytest.fixture(scope="module")
def trained(peer_jets):
    cfg = hgq2.PeerConfig(kind="linformer", **TINY)
    model = hgq2.build_model(cfg, *peer_jets.shape, len(peer_jets.class_names))
    info = hgq2.train_peer(model, peer_jets, cfg, log=lambda s: None)
    return model, info, hgq2.convert(model)


def test_jets_follow_the_split_and_the_training_scaler(jets, peer_jets):
    from l1tagger.features.inputs import build_inputs

    assert peer_jets.shape == (8, 3) and {p: len(v) for p, v in peer_jets.y.items()} == {"train": 180, "val": 60,
                                                                                            "test": 60}
    tr, _, te = split_indices(len(jets), (0.6, 0.2, 0.2), seed=1)
    cfg = ModelConfig(n_particles=8, features="l1", pair_bias=False)
    _, scaler = build_inputs(jets.subset(tr), cfg)  # the scaler l1tagger train fits on the training jets
    want, _ = build_inputs(jets.subset(te), cfg, scaler)
    np.testing.assert_array_equal(peer_jets.x["test"], want.x)
    np.testing.assert_array_equal(peer_jets.y["test"], jets.labels[te])
    with pytest.raises(DataError, match="split: part 'test' has indices outside"):
        hgq2.split_jets(jets, {"train": tr, "val": tr, "test": np.array([len(jets)])}, cfg)


def test_trained_linformer_is_bit_exact_and_costed(trained, peer_jets):
    model, info, comb = trained
    assert info["ebops"] > 0 and len(info["history"]["loss"]) == 1 and info["best_epoch"] == 1
    ref = hgq2.keras_outputs(model, peer_jets.x["test"])
    fw = hgq2.firmware_outputs(comb, peer_jets.x["test"])
    check = hgq2.compare_outputs(ref, fw)
    assert check["bit_exact"] and check["n_jets"] == 60 and check["n_mismatched_jets"] == 0
    cost = hgq2.comb_cost(comb)
    assert cost["status"] == "ok" and cost["lut"] > 0 and cost["latency_cycles"] >= 1


def test_comparator_catches_a_planted_error(trained, peer_jets):
    model, _, comb = trained
    x = peer_jets.x["test"]
    ref = hgq2.keras_outputs(model, x)
    # one output value of one jet off by the smallest step: caught and located
    fw = hgq2.firmware_outputs(comb, x)
    fw[7, 1] += 2.0 ** -12
    check = hgq2.compare_outputs(ref, fw)
    assert not check["bit_exact"] and check["n_mismatched_jets"] == 1 and check["first_mismatch"] == 7
    # the Keras model changed after conversion (the last layer's weights negated): the firmware no longer matches it
    kernel = model.get_layer("logits").kernel
    old = np.array(kernel.numpy())
    try:
        kernel.assign(-old)
        check = hgq2.compare_outputs(hgq2.keras_outputs(model, x), hgq2.firmware_outputs(comb, x))
    finally:
        kernel.assign(old)
    assert not check["bit_exact"] and check["n_mismatched_jets"] > len(x) // 2
    # a test-bench feed error (particles fed in reverse order): caught
    check = hgq2.compare_outputs(ref, hgq2.firmware_outputs(comb, x[:, ::-1]))
    assert not check["bit_exact"] and check["n_mismatched_jets"] > 0
    with pytest.raises(DataError, match="differ in shape"):
        hgq2.compare_outputs(ref, ref[:, :2])


def test_jedi_linear_style_network_converts_bit_exact(peer_jets):
    cfg = hgq2.PeerConfig(kind="jedi_linear", **TINY)
    model = hgq2.build_model(cfg, *peer_jets.shape, len(peer_jets.class_names))
    hgq2.model_ebops(model, peer_jets.x["train"])  # calibrated, untrained: conversion and check only
    comb = hgq2.convert(model)
    x = peer_jets.x["test"]
    assert hgq2.compare_outputs(hgq2.keras_outputs(model, x), hgq2.firmware_outputs(comb, x))["bit_exact"]


def test_bad_peer_config_names_the_field(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(ConfigError, match="KERAS_BACKEND is 'jax'"):
        hgq2.build_model(hgq2.PeerConfig(), 8, 3, 3)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="peer kind: 'topk'"):
        hgq2.PeerConfig(kind="topk").validate()
    with pytest.raises(ConfigError, match="peer linformer_k"):
        hgq2.PeerConfig(linformer_k=0).validate()
    with pytest.raises(ConfigError, match="peer ramp_fraction"):
        hgq2.PeerConfig(ramp_fraction=1.0).validate()
    # beta ramps over 70 % of the epochs; the model is chosen among the epochs after it (at least one)
    assert hgq2.PeerConfig(epochs=30).ramp_epochs == 21 and hgq2.PeerConfig(epochs=1).ramp_epochs == 0


def test_command_on_a_run_writes_rows(tmp_path, capsys):
    """The command on a run directory (toy dataset spec, split.npz, no checkpoint): rows in peers.{json,md} with the
    bit-exact verdict, the number of jets, cost, config and provenance."""
    from l1tagger.peers.__main__ import main

    run = tmp_path / "runs" / "toy"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"name": "toy", "dataset": "toy:300:3",
                                                     "model": {"n_particles": 8, "features": "l1"}}))
    tr, va, te = split_indices(300, (0.6, 0.2, 0.2), seed=1)
    np.savez(run / "split.npz", train=tr, val=va, test=te)
    out = tmp_path / "peers"
    args = ["--run", str(run), "--out", str(out), "--kinds", "linformer", "--min-bitexact-jets", "50"]
    args += [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    assert main(args) == 0
    doc = json.loads((out / "peers.json").read_text())
    (row,) = doc["rows"]
    assert row["origin"] == "same-jets peer (hgq2)" and row["bit_exact"]["verdict"] == "bit-exact"
    assert row["bit_exact"]["n_jets"] == 60 and row["accuracy_n_jets"] == 60
    assert row["da4ml_lut"] > 0 and row["ebops"] > 0 and row["rejection"]["signal_efficiency"] == 0.5
    assert row["config"]["jets"]["scaler"].startswith("fitted on the run's training split")
    assert row["config"]["latency_cutoff"] == 8.0 == row["peer"]["da4ml_cost"]["latency_cutoff"]  # the run's cutoff
    assert row["provenance"]["versions"]["hgq2"] and row["provenance"]["command"].startswith(
        "python -m l1tagger.peers --run ")
    assert doc["published_anchors"] and all("other jets" in a["jets"] for a in doc["published_anchors"])
    md = (out / "peers.md").read_text()
    assert row["name"] in md and "Published anchors (other jets" in md
    # the row has the sweep table's shape: it goes on the same Pareto table and plot as the sweep's points
    from l1tagger.sweep import collect

    key = {"accuracy": "accuracy", "rejection": "rejection_geomean"}
    fronts = {m: {c: collect.pareto_front([row], key[m], c) for c in collect.COSTS} for m in collect.METRICS}
    row["pareto_front"] = {m: [c for c in collect.COSTS if row["name"] in fronts[m][c]] for m in collect.METRICS}
    assert row["pareto_front"]["accuracy"] == ["da4ml_lut", "ebops"]
    table = collect.markdown({"sweep": {"name": "s", "file": "s.yaml", "n_points": 1, "signal_efficiency": 0.5},
                              "provenance": row["provenance"], "notes": {"accuracy": "", "rejection": "",
                                                                          "bit_exact": ""}, "rows": [row]})
    assert f"| {row['name']} |" in table and "bit-exact (60)" in table
    assert collect.plot([row], fronts, 0.5, tmp_path / "pareto.png") and (tmp_path / "pareto.png").stat().st_size
    # too few test jets for the default check: a named error before anything is trained
    assert main(["--run", str(run), "--out", str(out), "--kinds", "mha"]) == 1
    assert "the test split has 60 jets, the bit-exact check needs at least 1000" in capsys.readouterr().err


def test_run_jets_use_the_runs_saved_scaler(tmp_path):
    """Same features and N as the run: the scaler is the one in the run's float checkpoint, not a refit."""
    import dataclasses

    from l1tagger.data.dataset import load_dataset
    from l1tagger.features.inputs import build_inputs
    from l1tagger.pipeline.config import load_run_config
    from l1tagger.training import train
    from l1tagger.training.loop import load_tagger

    run = tmp_path / "runs" / "toy"
    (run / "steps").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"name": "toy", "dataset": "toy:300:3", "model": {
        "n_particles": 8, "features": "l1", "d_model": 8, "embed_dim": 8, "ffn_dim": 8, "head_dim": 8,
        "pair_bias": False}}))
    tr, va, te = split_indices(300, (0.6, 0.2, 0.2), seed=1)
    np.savez(run / "split.npz", train=tr, val=va, test=te)
    cfg = load_run_config(run / "config.yaml")
    jets = load_dataset("toy:300:3")
    tc = dataclasses.replace(cfg.train_config(3), epochs=1)
    # the checkpoint's scaler is fitted on other jets than the training split: a refit would not reproduce it
    ckpt = train(tc, jets.subset(va), jets.subset(te), run / "train", progress=False)
    (run / "steps" / "train.json").write_text(json.dumps({"artifacts": {"checkpoint": str(ckpt)}}))
    pj = hgq2.run_jets(run)
    assert pj.source["scaler"].startswith("the run's (float checkpoint")
    want, _ = build_inputs(jets.subset(te), cfg.model, load_tagger(ckpt).scaler)
    np.testing.assert_array_equal(pj.x["test"], want.x)
    refit = hgq2.run_jets(run, features="kin")  # other features: refitted on the run's training split
    assert refit.shape == (8, 7) and refit.source["scaler"].startswith("fitted on the run's training split")
    (run / "split.npz").unlink()
    with pytest.raises(ConfigError, match="split.npz missing"):
        hgq2.run_jets(run)
